from conftest import features, by_persona
def test_smoke(spark, bronze, config):
    df = features(spark, bronze, config.features)
    for r in df.orderBy("persona_id").collect():
        print({k: v for k, v in r.asDict().items() if v is not None})

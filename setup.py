"""segengine: customer segmentation as a suite of Spark jobs over Delta Lake."""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent


def requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-r"))]


class BuildWithConf(build_py):
    """Ship conf/*.yaml inside the package so an installed wheel finds its defaults."""

    def run(self):
        super().run()
        for src in sorted((HERE / "conf").rglob("*.yaml")):
            target = Path(self.build_lib) / "segengine" / src.relative_to(HERE)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(src), str(target))


setup(
    cmdclass={"build_py": BuildWithConf},
    name="segengine",
    version="0.1.0",
    description="Customer segmentation engine on Spark, Delta Lake and MLflow",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["segengine", "segengine.*"]),
    package_data={
        "segengine": ["py.typed", "templates/*", "insights/templates/*", "studio/templates/*", "studio/static/*"]
    },
    install_requires=requirements("requirements.txt"),
    extras_require={"test": [r for r in requirements("requirements-dev.txt")]},
    entry_points={"console_scripts": ["segengine=segengine.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.11", "Topic :: Database"],
)

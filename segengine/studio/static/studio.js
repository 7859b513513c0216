// The segment builder: conditions picked from the catalog, a live count after each change,
// the explanation and SQL, and "save as audience". Plain JavaScript, no build step.
"use strict";

(function () {
  const catalogNode = document.getElementById("catalog");
  if (!catalogNode) return;
  const catalog = JSON.parse(catalogNode.textContent);
  const byName = Object.fromEntries(catalog.map((a) => [a.name, a]));
  const conditionsNode = document.getElementById("conditions");
  const countNode = document.getElementById("count");
  const problemsNode = document.getElementById("problems");
  const explainNode = document.getElementById("explain");
  const savedNode = document.getElementById("saved");
  let rows = []; // {id, attr, op, value}
  let nextId = 1;
  let sequence = 0; // answers to older requests are dropped
  let timer = null;

  function option(value, label, selected) {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = label;
    node.selected = selected;
    return node;
  }

  function labelled(text, control, id) {
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = text;
    control.id = id;
    return [label, control];
  }

  function valueControl(attr, op, value, id) {
    const shape = attr.operator_shapes[op] || "scalar";
    if (shape === "none") return null;
    let control;
    if (shape === "scalar" && attr.allowed_values) {
      control = document.createElement("select");
      control.append(option("", "choose…", value === ""));
      attr.allowed_values.forEach((v) => control.append(option(v, v, v === value)));
    } else if (shape === "scalar" && attr.type === "boolean") {
      control = document.createElement("select");
      ["", "true", "false"].forEach((v) => control.append(option(v, v || "choose…", v === value)));
    } else {
      control = document.createElement("input");
      control.value = value;
      if ((shape === "scalar" || shape === "days") && (attr.type === "integer" || attr.type === "double" || shape === "days")) {
        control.type = "number";
        control.step = attr.type === "double" ? "any" : "1";
      } else if ((shape === "scalar" || shape === "date") && (attr.type === "date" || attr.type === "timestamp")) {
        control.type = "date";
      } else {
        control.type = "text";
        if (shape === "pair") control.placeholder = "low, high";
        if (shape === "list") control.placeholder = attr.allowed_values ? attr.allowed_values.join(", ") : "a, b, c";
      }
    }
    return control;
  }

  function typed(attr, text) {
    const t = text.trim();
    if (attr.type === "integer" || attr.type === "double") {
      const n = Number(t);
      return t !== "" && !Number.isNaN(n) ? n : t;
    }
    if (attr.type === "boolean") return t === "true" ? true : t === "false" ? false : t;
    return t;
  }

  function conditionOf(row) {
    const attr = byName[row.attr];
    const shape = attr.operator_shapes[row.op] || "scalar";
    const cond = { attr: row.attr, op: row.op };
    if (shape === "none") return cond;
    if (shape === "pair" || shape === "list") {
      cond.value = row.value.split(",").filter((p) => p.trim() !== "").map((p) => typed(attr, p));
    } else if (shape === "days") {
      cond.value = typed({ type: "integer" }, row.value);
    } else {
      cond.value = typed(attr, row.value);
    }
    return cond;
  }

  function documentOf() {
    const doc = { name: document.getElementById("segment-name").value.trim() || "New segment" };
    if (rows.length) {
      doc.where = { [document.getElementById("combine").value]: rows.map(conditionOf) };
    }
    return doc;
  }

  function render() {
    conditionsNode.replaceChildren();
    rows.forEach((row, i) => {
      const n = i + 1;
      const attr = byName[row.attr];
      const box = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = `Condition ${n}`;
      box.append(legend);

      const attrSelect = document.createElement("select");
      catalog.forEach((a) => attrSelect.append(option(a.name, a.name, a.name === row.attr)));
      attrSelect.addEventListener("change", () => {
        row.attr = attrSelect.value;
        row.op = byName[row.attr].operators[0];
        row.value = "";
        render();
        changed();
      });
      box.append(...labelled(`Attribute ${n}`, attrSelect, `attr-${row.id}`));

      const opSelect = document.createElement("select");
      attr.operators.forEach((op) => opSelect.append(option(op, op, op === row.op)));
      opSelect.addEventListener("change", () => {
        row.op = opSelect.value;
        render();
        changed();
      });
      box.append(...labelled(`Operator ${n}`, opSelect, `op-${row.id}`));

      const control = valueControl(attr, row.op, row.value, `value-${row.id}`);
      if (control) {
        const update = () => {
          row.value = control.value;
          changed();
        };
        control.addEventListener("input", update);
        control.addEventListener("change", update);
        box.append(...labelled(`Value ${n}`, control, `value-${row.id}`));
      }

      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = `Remove condition ${n}`;
      remove.addEventListener("click", () => {
        rows = rows.filter((r) => r !== row);
        render();
        changed();
      });
      box.append(remove);

      const help = document.createElement("small");
      help.textContent = ` ${attr.type}${attr.unit ? ", " + attr.unit : ""}: ${attr.description}`;
      box.append(help);
      conditionsNode.append(box);
    });
  }

  function showProblems(problems) {
    problemsNode.replaceChildren(
      ...problems.map((p) => {
        const li = document.createElement("li");
        li.textContent = p;
        return li;
      })
    );
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    return { ok: response.ok, data };
  }

  async function refresh() {
    const mine = ++sequence;
    const body = { document: documentOf() };
    countNode.textContent = "Count: counting…";
    const [count, explain] = await Promise.all([post("/api/segments/count", body), post("/api/segments/explain", body)]);
    if (mine !== sequence) return;
    if (!count.ok) {
      countNode.textContent = "Count: –";
      showProblems(count.data.problems || [String(count.data.detail)]);
      explainNode.textContent = explain.ok ? explain.data.explanation : "";
      return;
    }
    showProblems([]);
    const parts = Object.entries(count.data.by_persona_type).map(([k, v]) => `${k} ${v}`);
    countNode.textContent = `Count: ${count.data.total}` + (parts.length ? ` (${parts.join(", ")})` : "") + ` on ${count.data.snapshot_date}`;
    explainNode.textContent = explain.ok ? explain.data.explanation : "";
  }

  function changed() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  document.getElementById("add-condition").addEventListener("click", () => {
    const first = catalog[0];
    rows.push({ id: nextId++, attr: first.name, op: first.operators[0], value: "" });
    render();
    changed();
  });
  document.getElementById("combine").addEventListener("change", changed);
  document.getElementById("segment-name").addEventListener("input", changed);

  document.getElementById("save").addEventListener("click", async () => {
    const doc = documentOf();
    const name = document.getElementById("audience-name").value.trim() || doc.name;
    const body = {
      document: doc,
      name,
      kind: document.getElementById("audience-kind").value,
      visibility: document.getElementById("audience-visibility").value,
    };
    savedNode.replaceChildren();
    const result = await post("/api/audiences", body);
    if (!result.ok) {
      savedNode.textContent = "Not saved: " + (result.data.problems || [result.data.detail]).join("; ");
      return;
    }
    const a = result.data;
    const link = document.createElement("a");
    link.href = "/audiences?name=" + encodeURIComponent(a.audience_id);
    link.textContent = `Open audience ${a.name}`;
    savedNode.append(`Saved ${a.kind} audience ${a.name}` + (a.size === null ? "" : ` with ${a.size} members`) + ". ", link);
  });

  changed();
})();

// Checks GraphQL requests against GitHub's published schema (npm @octokit/graphql-schema)
// for Baton's contract gate: the document must validate, and the variables sent must
// coerce to the variables it declares. Answers {"errors": [...]} (empty when valid).
// Usage: node graphql-check.mjs PORT   (run from the folder holding node_modules/)
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.cwd() + "/");
const { buildClientSchema, parse, validate, getOperationAST } = require("graphql");
const { getVariableValues } = require("graphql/execution/values");
// The introspection result: GitHub's SDL file repeats two fields, which buildSchema refuses.
const introspection = JSON.parse(
  readFileSync(process.cwd() + "/node_modules/@octokit/graphql-schema/schema.json", "utf8"),
);
const schema = buildClientSchema(introspection.data ?? introspection);

function check(body) {
  if (typeof body.query !== "string") return ["request body has no query string"];
  let doc;
  try {
    doc = parse(body.query);
  } catch (e) {
    return [e.message];
  }
  const invalid = validate(schema, doc).map((e) => e.message);
  if (invalid.length > 0) return invalid;
  const op = getOperationAST(doc, body.operationName ?? null);
  if (!op) return ["no single operation to run"];
  const coerced = getVariableValues(schema, op.variableDefinitions ?? [], body.variables ?? {});
  const errors = (coerced.errors ?? []).map((e) => e.message);
  const declared = new Set((op.variableDefinitions ?? []).map((d) => d.variable.name.value));
  for (const name of Object.keys(body.variables ?? {})) {
    if (!declared.has(name)) errors.push(`Variable "$${name}" is sent but not declared by the operation`);
  }
  return errors;
}

const port = Number(process.argv[2]);
createServer((req, res) => {
  let data = "";
  req.on("data", (c) => (data += c));
  req.on("end", () => {
    let errors;
    try {
      errors = check(JSON.parse(data));
    } catch (e) {
      errors = [`request body is not JSON: ${e.message}`];
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors }));
  });
}).listen(port, "127.0.0.1");

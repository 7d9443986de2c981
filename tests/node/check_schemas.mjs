// Compile every JSON Schema in a folder with Ajv (draft 2020-12, strict mode, ajv-formats) and validate
// sample records against them. Usage: node check_schemas.mjs SCHEMA_DIR [SAMPLES_JSON]
// SAMPLES_JSON maps a schema file name to a list of records. Prints one JSON report on stdout:
// {"compiled": [file...], "compile_errors": {file: message}, "invalid": {file: [[index, errors]...]},
//  "validated": {file: count}}.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [schemaDir, samplesPath] = process.argv.slice(2);
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);

const report = { compiled: [], compile_errors: {}, invalid: {}, validated: {} };
const validators = {};
for (const file of readdirSync(schemaDir).filter((f) => f.endsWith(".json")).sort()) {
  try {
    validators[file] = ajv.compile(JSON.parse(readFileSync(join(schemaDir, file), "utf8")));
    report.compiled.push(file);
  } catch (err) {
    report.compile_errors[file] = String(err.message);
  }
}
const samples = samplesPath ? JSON.parse(readFileSync(samplesPath, "utf8")) : {};
for (const [file, records] of Object.entries(samples)) {
  const validate = validators[file];
  if (!validate) continue; // reported under compile_errors (or the file is missing: the test checks names)
  report.validated[file] = records.length;
  records.forEach((record, index) => {
    if (!validate(record)) {
      (report.invalid[file] ??= []).push([index, validate.errors]);
    }
  });
}
process.stdout.write(JSON.stringify(report));

// ServiceMonitor and PrometheusRule objects against prometheus-operator's own monitoring.coreos.com/v1
// schemas, as the npm package @kubernetes-models/prometheus-operator publishes them (validators
// generated from the operator's API types; scripts/setup.sh installs it in .tools). Run by
// helm/check-chart.py:
//
//     node helm/validate-crs.mjs NODE_MODULES < objects.json
//
// stdin: a JSON array of objects. stdout: a JSON array with, for each object, its schema errors
// as "/json/pointer: message" strings (empty: valid). Like the CRDs, these schemas accept keys
// they do not know; check-chart.py's RENDERED_FIELDS catches those.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [nodeModules] = process.argv.slice(2);
if (!nodeModules) {
  console.error("usage: node helm/validate-crs.mjs NODE_MODULES < objects.json");
  process.exit(2);
}
const v1 = `${nodeModules}/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1`;
const load = async (kind) => (await import(pathToFileURL(`${v1}/${kind}.js`).href))[kind];
const models = {
  ServiceMonitor: await load("ServiceMonitor"),
  PrometheusRule: await load("PrometheusRule"),
};

const results = JSON.parse(readFileSync(0, "utf8")).map((object) => {
  const Model = models[object.kind];
  if (!Model) {
    return [`/kind: ${object.kind} is neither ServiceMonitor nor PrometheusRule`];
  }
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    if (!Array.isArray(error.errors)) {
      throw error;
    }
    return error.errors.map(
      (e) => `${e.instancePath || "/"}: ${e.message}${e.params ? " " + JSON.stringify(e.params) : ""}`,
    );
  }
});
process.stdout.write(JSON.stringify(results) + "\n");

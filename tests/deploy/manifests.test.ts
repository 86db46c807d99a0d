/**
 * deploy/kubernetes and deploy/Containerfile, checked against the relay they
 * deploy. This is not a Kubernetes schema validation (no validator is a
 * dependency, and schemas are not fetched at test time): it checks what the
 * relay itself depends on, so that a renamed option, a moved route or a
 * changed port breaks a test instead of a rollout.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { SHUTDOWN_DEADLINE_MS } from "../../src/cli/signals.ts";
import { loadConfig } from "../../src/config/config.ts";
import { OPTIONS } from "../../src/config/options.ts";
import { connectSimDaemon } from "../../src/sim/index.ts";
import type { Json } from "../../src/sim/wait.ts";
import { REPO_ROOT } from "../helpers/binary.ts";
import { startTestRelay, type TestRelay } from "../helpers/relay.ts";

const K8S_DIR = join(REPO_ROOT, "deploy", "kubernetes");
const CONTAINERFILE = join(REPO_ROOT, "deploy", "Containerfile");

async function yamlDocs(file: string): Promise<Json[]> {
  const parsed: unknown = Bun.YAML.parse(await Bun.file(join(K8S_DIR, file)).text());
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((d) => d !== null);
}

const kustomization = (await yamlDocs("kustomization.yaml"))[0];
const docs: Json[] = (
  await Promise.all((kustomization.resources as string[]).map(yamlDocs))
).flat();

function only(kind: string, predicate: (doc: Json) => boolean = () => true): Json {
  const found = docs.filter((d) => d.kind === kind && predicate(d));
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
}

const statefulSet = only("StatefulSet");
const pod = statefulSet.spec.template.spec;
const container = pod.containers[0];
const secret = only("Secret");
const daemonService = only("Service", (s) => s.spec.clusterIP !== "None");
const headless = only("Service", (s) => s.spec.clusterIP === "None");
const serviceMonitor = only("ServiceMonitor");

/** The container's env as plain values; a fieldRef stands for a pod name. */
const env: Record<string, string> = Object.fromEntries(
  (container.env as Json[]).map((e) => [e.name, e.valueFrom ? "makima-relay-0" : String(e.value)]),
);

const mountOf = (volumeName: string): Json =>
  (container.volumeMounts as Json[]).find((m) => m.name === volumeName);
const secretVolume = (pod.volumes as Json[]).find((v) => v.secret);
const secretMount = mountOf(secretVolume.name);
const dataClaim = statefulSet.spec.volumeClaimTemplates[0];
const dataMount = mountOf(dataClaim.metadata.name);

const httpPort = (container.ports as Json[]).find((p) => p.name === "http");
/** A port as a probe or Service names it: a number, or the name of a container port. */
const containerPort = (port: number | string): number | undefined =>
  typeof port === "number"
    ? port
    : (container.ports as Json[]).find((p) => p.name === port)?.containerPort;

const contains = (labels: Record<string, string>, subset: Record<string, string>) =>
  Object.keys(subset).length > 0 && Object.entries(subset).every(([k, v]) => labels[k] === v);

test("kustomization lists every manifest in the folder, each a named object", () => {
  const files = readdirSync(K8S_DIR).filter(
    (f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml",
  );
  expect([...kustomization.resources].sort()).toEqual(files.sort());
  for (const doc of docs) {
    expect({
      apiVersion: typeof doc.apiVersion,
      kind: typeof doc.kind,
      name: doc.metadata?.name,
    }).toMatchObject({ apiVersion: "string", kind: "string", name: expect.any(String) });
  }
});

test("every env var is a relay option, or the *_FILE form of one that reads files", () => {
  const names = new Set(OPTIONS.map((o) => o.env));
  const fileNames = new Set(OPTIONS.filter((o) => o.fromFile).map((o) => `${o.env}_FILE`));
  const unknown = Object.keys(env).filter((n) => !names.has(n) && !fileNames.has(n));
  expect(unknown).toEqual([]);
  // Secrets only as files: a value in the pod spec shows in `kubectl describe`.
  const inline = OPTIONS.filter((o) => o.secret && env[o.env] !== undefined).map((o) => o.env);
  expect(inline).toEqual([]);
});

test("the *_FILE variables point at keys of the mounted Secret", () => {
  const files = Object.entries(env).filter(([name]) => name.endsWith("_FILE"));
  expect(files.map(([name]) => name).sort()).toEqual([
    "MAKIMA_API_KEY_FILE",
    "MAKIMA_RELAY_ADMIN_TOKEN_FILE",
    "MAKIMA_RELAY_DAEMON_KEYS_FILE",
  ]);
  const keys = Object.keys({ ...secret.stringData, ...secret.data });
  for (const [, path] of files) {
    expect(dirname(path)).toBe(secretMount.mountPath);
    expect(keys).toContain(path.slice(secretMount.mountPath.length + 1));
  }
  expect(secretVolume.secret.secretName).toBe(secret.metadata.name);
  expect(secretMount.readOnly).toBe(true);
  // Written in decimal on purpose: YAML 1.2 parsers read 0440 as 440, Kubernetes as 0o440.
  expect(secretVolume.secret.defaultMode).toBe(0o440);
});

test("the env loads as a valid relay config, secrets read through the mount", () => {
  const files = new Map(
    Object.entries(secret.stringData as Record<string, string>).map(([key, value]) => [
      `${secretMount.mountPath}/${key}`,
      `${value}\n`,
    ]),
  );
  const loaded = loadConfig(env, [], {
    readFile: (path) => {
      const text = files.get(path);
      if (text === undefined) throw new Error(`no such file in the Secret: ${path}`);
      return text;
    },
    cwd: "/",
    hostname: "makima-relay-0",
  });
  if (!loaded.ok) throw new Error(loaded.error);
  const { config } = loaded.value;
  expect({
    apiKey: config.apiKey,
    adminToken: config.adminToken,
    daemonKeys: config.daemonKeys.length,
    port: config.port,
    dbInClaim: dirname(config.dbPath) === dataMount.mountPath,
    upstream: config.serverUrl?.endsWith("/ws/daemon"),
  }).toEqual({
    apiKey: secret.stringData["api-key"],
    adminToken: secret.stringData["admin-token"],
    daemonKeys: 2,
    port: httpPort.containerPort,
    dbInClaim: true,
    upstream: true,
  });
});

test("one port everywhere: container, env, Service, scrape annotation, Containerfile", async () => {
  const annotations = statefulSet.spec.template.metadata.annotations;
  const expose = /^EXPOSE\s+(\d+)/m.exec(await Bun.file(CONTAINERFILE).text())?.[1];
  const defaultPort = OPTIONS.find((o) => o.env === "MAKIMA_RELAY_PORT")?.default;
  const ports = {
    container: httpPort.containerPort,
    env: Number(env.MAKIMA_RELAY_PORT),
    service: daemonService.spec.ports[0].port,
    serviceTarget: containerPort(daemonService.spec.ports[0].targetPort),
    headlessTarget: containerPort(headless.spec.ports[0].targetPort),
    annotation: Number(annotations["prometheus.io/port"]),
    containerfile: Number(expose),
    relayDefault: Number(defaultPort),
  };
  expect(new Set(Object.values(ports))).toEqual(new Set([8787]));
  expect(annotations["prometheus.io/scrape"]).toBe("true");
});

test("selectors match labels; the ServiceMonitor scrapes the daemon Service only", () => {
  const podLabels = statefulSet.spec.template.metadata.labels;
  expect(contains(podLabels, statefulSet.spec.selector.matchLabels)).toBe(true);
  expect(contains(podLabels, daemonService.spec.selector)).toBe(true);
  expect(contains(podLabels, headless.spec.selector)).toBe(true);
  expect(statefulSet.spec.serviceName).toBe(headless.metadata.name);
  const monitored = docs.filter(
    (d) =>
      d.kind === "Service" && contains(d.metadata.labels, serviceMonitor.spec.selector.matchLabels),
  );
  expect(monitored.map((s) => s.metadata.name)).toEqual([daemonService.metadata.name]);
  const portNames = (daemonService.spec.ports as Json[]).map((p) => p.name);
  for (const endpoint of serviceMonitor.spec.endpoints as Json[]) {
    expect(portNames).toContain(endpoint.port);
  }
  expect(serviceMonitor.apiVersion).toBe("monitoring.coreos.com/v1");
});

test("each relay has its own volume for the database, kept when scaled down", () => {
  expect(dataMount).toBeDefined();
  expect(env.MAKIMA_RELAY_DB?.startsWith(`${dataMount.mountPath}/`)).toBe(true);
  expect(dataClaim.spec.accessModes).toEqual(["ReadWriteOnce"]);
  expect(statefulSet.spec.persistentVolumeClaimRetentionPolicy).toEqual({
    whenDeleted: "Retain",
    whenScaled: "Retain",
  });
  // The claim is writable by the non-root user only through fsGroup.
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: expect.any(Number) });
});

test("resources are bounded and the grace period covers the relay's clean stop", () => {
  const cpu = (q: string) => (q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q));
  const mib = (q: string) => Number(q.replace(/Mi$/, "")) * (q.endsWith("Gi") ? 1024 : 1);
  const { requests, limits } = container.resources;
  expect(cpu(requests.cpu)).toBeLessThanOrEqual(cpu(limits.cpu));
  expect(mib(requests.memory)).toBeLessThanOrEqual(mib(limits.memory));
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(SHUTDOWN_DEADLINE_MS);
});

test("the Containerfile runs the binary as a non-root user on a minimal base", async () => {
  const text = await Bun.file(CONTAINERFILE).text();
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
  expect(["gcr.io/distroless/cc-debian12:nonroot", "debian:12-slim"]).toContain(froms.at(-1) ?? "");
  const user = /^USER\s+(\S+)/m.exec(text)?.[1] ?? "root";
  expect(user.split(":")[0]).not.toMatch(/^(0|root)$/);
  const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])/m.exec(text)?.[1] ?? "[]") as string[];
  expect(text).toMatch(new RegExp(`^COPY .*/makima-relay ${entrypoint[0]}$`, "m"));
  const envNames = [...text.matchAll(/\b(MAKIMA_[A-Z_]+)=/g)].map((m) => m[1]);
  const known = new Set(OPTIONS.map((o) => o.env));
  expect(envNames.filter((n) => !known.has(n as string))).toEqual([]);
});

describe("probe and scrape paths are relay routes", () => {
  const probes = ["livenessProbe", "readinessProbe", "startupProbe"]
    .map((name) => container[name]?.httpGet)
    .filter(Boolean);
  const scrapePaths = [
    statefulSet.spec.template.metadata.annotations["prometheus.io/path"],
    ...(serviceMonitor.spec.endpoints as Json[]).map((e) => e.path),
  ];
  // With an admin token set and reads protected: the strictest setting. Probes carry no token.
  let strict: TestRelay;
  // With the manifest's own read protection (none unless it sets MAKIMA_RELAY_PROTECT_READS).
  let asDeployed: TestRelay;
  beforeAll(async () => {
    strict = await startTestRelay({
      env: { MAKIMA_RELAY_ADMIN_TOKEN: "probe-test-token", MAKIMA_RELAY_PROTECT_READS: "true" },
    });
    asDeployed = await startTestRelay({
      env: {
        MAKIMA_RELAY_ADMIN_TOKEN: "probe-test-token",
        MAKIMA_RELAY_PROTECT_READS: env.MAKIMA_RELAY_PROTECT_READS ?? "false",
      },
    });
  });
  afterAll(async () => {
    await strict?.[Symbol.asyncDispose]();
    await asDeployed?.[Symbol.asyncDispose]();
  });

  test("liveness and readiness probe the container's port and answer 200 without a token", async () => {
    expect(probes.length).toBeGreaterThanOrEqual(2);
    for (const probe of probes) {
      expect(containerPort(probe.port)).toBe(httpPort.containerPort);
      const res = await strict.get(probe.path);
      expect({ path: probe.path, status: res.status }).toEqual({ path: probe.path, status: 200 });
      const body = (await res.json()) as { healthy?: boolean; ready?: boolean };
      // /health for liveness, /ready for readiness.
      expect(body.healthy === true || body.ready === true).toBe(true);
    }
  });

  test("the scrape path serves Prometheus text without credentials", async () => {
    expect(new Set(scrapePaths)).toEqual(new Set(["/metrics"]));
    const res = await asDeployed.get("/metrics");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("makima_relay_");
  });
});

describe("the Makima daemon example points at the relay", () => {
  const example = Bun.YAML.parse(
    readFileSync(join(K8S_DIR, "examples", "makima-daemon.yaml"), "utf8"),
  ) as Json[];
  const daemonPod = example.find((d) => d.kind === "Deployment").spec.template.spec;
  const daemonEnv = daemonPod.containers[0].env as Json[];
  const exampleSecret = example.find((d) => d.kind === "Secret");
  const urlVar = daemonEnv.find((e) => e.name === "MAKIMA_DAEMON_SERVER_URL");
  const keyRef = daemonEnv.find((e) => e.name === "MAKIMA_API_KEY")?.valueFrom?.secretKeyRef;

  test("its server URL is the relay Service's daemon path, and its key one the relay accepts", () => {
    const url = new URL(urlVar.value);
    const relayKeys = String(secret.stringData["daemon-keys"]).split(",");
    expect({
      scheme: url.protocol,
      host: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      secret: keyRef?.name,
      keyAccepted: relayKeys.includes(exampleSecret.stringData[keyRef?.key]),
    }).toEqual({
      scheme: "ws:",
      host: daemonService.metadata.name,
      port: daemonService.spec.ports[0].port,
      path: "/ws/daemon",
      secret: exampleSecret.metadata.name,
      keyAccepted: true,
    });
  });

  test("a daemon configured that way authenticates at a relay with the manifest's keys", async () => {
    await using relay = await startTestRelay({
      env: { MAKIMA_RELAY_DAEMON_KEYS: String(secret.stringData["daemon-keys"]) },
    });
    const path = new URL(urlVar.value).pathname;
    const daemon = await connectSimDaemon({
      url: `ws://127.0.0.1:${relay.port}${path}`,
      apiKey: exampleSecret.stringData[keyRef?.key],
      machineId: "k8s-daemon-1",
      hostname: "makima-daemon-0",
      maxConcurrentTasks: 1,
    });
    await daemon.authenticated;
    const listed = await relay.json<{ daemons: { machineId: string }[] }>("/daemons");
    await daemon.close();
    expect(listed.daemons.map((d) => d.machineId)).toEqual(["k8s-daemon-1"]);
  });
});

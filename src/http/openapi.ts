/**
 * The API description: a UI at /swagger and the OpenAPI 3.1 document at
 * /swagger/json, generated from the routes' TypeBox models (never `fromTypes()`,
 * which would run the TypeScript compiler inside the binary). The UI works
 * offline: Scalar's standalone bundle is embedded in the binary and served at
 * /swagger/scalar.js, and every Scalar feature that would reach the internet on
 * its own is switched off (see SCALAR_CONFIG).
 */
import { openapi } from "@elysiajs/openapi";
import { ScalarRender } from "@elysiajs/openapi/scalar";
import { Elysia } from "elysia";
// The package's `exports` do not list its browser bundle, hence the path into node_modules.
// `with { type: "file" }` yields the file's path (in the binary, an embedded /$bunfs path);
// the bundle has no type declarations, so TypeScript cannot see that this is a string.
// @ts-expect-error TS7016: no declaration file for the UMD bundle
import scalarBundle from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with {
  type: "file",
};
import { ELYSIA_CONFIG } from "./config.ts";
import { WS_PATH, WS_PROTOCOL, WS_SCHEMAS } from "./openapi-websocket.ts";

const SCALAR_JS_FILE: string = scalarBundle;

/**
 * The plugin types Scalar's options as its parsed config (every default filled
 * in) and from an older @scalar/types than the bundle, which lacks `agent`.
 */
type ScalarOptions = NonNullable<NonNullable<Parameters<typeof openapi>[0]>["scalar"]>;
type ScalarPageOptions = Partial<ScalarOptions> & {
  agent?: { disabled?: boolean };
  mcp?: { disabled?: boolean };
};

/**
 * Relative, like the spec URL the plugin writes (`swagger/json`), so the page
 * also works behind a reverse proxy that mounts the relay under a prefix.
 */
export const SCALAR_JS_URL = "swagger/scalar.js";

/**
 * Scalar 1.72's standalone.js is one self-contained UMD file (no chunks, no
 * dynamic imports but the opt-in `plugins`). What it would fetch by default,
 * and why each is off:
 * - fonts from fonts.scalar.com (`withDefaultFonts`): system fonts instead;
 * - "Try it" requests through proxy.scalar.com whenever the page is not on
 *   localhost (`proxyUrl` undefined): "" sends them straight to the relay;
 * - the AI agent chat (api.scalar.com), "Generate MCP", and telemetry;
 * - the developer toolbar, whose Share and Deploy upload the document.
 */
const SCALAR_CONFIG = {
  cdn: SCALAR_JS_URL,
  withDefaultFonts: false,
  proxyUrl: "",
  telemetry: false,
  agent: { disabled: true },
  mcp: { disabled: true },
  showDeveloperTools: "never",
} satisfies ScalarPageOptions;

export const ADMIN_SECURITY = [{ adminToken: [] }];

export function openapiDocs(version: string) {
  const info = {
    title: "makima-relay",
    version,
    description:
      "Edge relay between a Makima server and many Makima daemons: status and history API.",
  };
  // The plugin's own page (provider "scalar") is one Response built at startup and returned to
  // every request; once Elysia has re-wrapped its body to add the CORS headers, the next load
  // fails with "Body object should not be disturbed or locked". So the plugin serves only the
  // spec, and the page below is a string rendered once by the plugin's own ScalarRender.
  const page = ScalarRender(
    info,
    // Scalar fills in its defaults in the browser; the page only carries these.
    { url: "swagger/json", ...SCALAR_CONFIG } as unknown as ScalarOptions,
  );
  const docs = openapi({
    path: "/swagger",
    specPath: "/swagger/json",
    provider: null,
    documentation: {
      info,
      tags: [
        { name: "status", description: "Health and status of the relay" },
        { name: "tasks", description: "Tasks the relay received from the server" },
        { name: "daemons", description: "Connected daemons and child relays" },
        { name: "logs", description: "Connection log" },
        { name: "admin", description: "Operator commands" },
        { name: "metrics", description: "Prometheus metrics" },
        { name: "websocket", description: WS_PROTOCOL },
      ],
      components: {
        schemas: WS_SCHEMAS,
        securitySchemes: {
          adminToken: {
            type: "http",
            scheme: "bearer",
            description:
              "MAKIMA_RELAY_ADMIN_TOKEN. Write routes need it (without one configured: loopback clients only); read routes too when MAKIMA_RELAY_PROTECT_READS=true. /health never does.",
          },
        },
      },
      paths: { "/ws/daemon": WS_PATH },
    },
  });
  // `hide`: the page and its script are the docs, not part of the API.
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.openapi" })
    .onAfterHandle(({ path, response }) => {
      if (path === "/swagger/json") liftParameterDescriptions(response);
    })
    .use(docs)
    .get(
      "/swagger",
      () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }),
      { detail: { hide: true } },
    )
    .get(
      "/swagger/scalar.js",
      () =>
        new Response(Bun.file(SCALAR_JS_FILE), {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "public, max-age=86400",
          },
        }),
      { detail: { hide: true } },
    );
}

interface SpecParameter {
  description?: string;
  schema?: { description?: string };
}

/**
 * The plugin writes a parameter's description into its schema only, where
 * API browsers do not show it: copy it onto the parameter (OpenAPI 3.1
 * "Parameter Object"). In place, so the plugin's cached document is fixed once.
 */
function liftParameterDescriptions(spec: unknown): void {
  const paths = (spec as { paths?: Record<string, Record<string, unknown>> }).paths ?? {};
  for (const operations of Object.values(paths)) {
    for (const op of Object.values(operations)) {
      const parameters = (op as { parameters?: SpecParameter[] }).parameters ?? [];
      for (const p of parameters) p.description ??= p.schema?.description;
    }
  }
}

/**
 * Which proxy the upstream link uses for a server, as the settings say
 * (config/upstream-proxy.ts), and how those settings are read: the
 * lower-case variables as curl reads them, a bare host:port as http://, only
 * http:// proxies, and errors that never show a proxy URL (it may hold a password).
 */
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/config.ts";
import { type ProxySettings, upstreamProxyFor } from "../../src/config/upstream-proxy.ts";

const PROXY = "http://proxy.internal:3128/";
const settings = (over: Partial<ProxySettings>): ProxySettings => ({
  upstreamProxy: null,
  httpsProxy: PROXY,
  httpProxy: "http://plain.internal:8080/",
  noProxy: [],
  ...over,
});
const via = (s: ProxySettings, server: string): string | null =>
  upstreamProxyFor(s)(new URL(server))?.href ?? null;

describe("upstreamProxyFor", () => {
  test("wss:// goes through HTTPS_PROXY, ws:// through HTTP_PROXY, none set: direct", () => {
    expect(via(settings({}), "wss://makima.example/ws/daemon")).toBe(PROXY);
    expect(via(settings({}), "ws://makima.example/ws/daemon")).toBe("http://plain.internal:8080/");
    expect(via(settings({ httpsProxy: null }), "wss://makima.example/ws/daemon")).toBeNull();
  });

  test.each([
    "ws://localhost:8080/ws/daemon",
    "wss://localhost/ws/daemon",
    "wss://api.localhost/ws/daemon",
    "wss://127.0.0.1/ws/daemon",
    "wss://127.1.2.3:9000/ws/daemon",
    "wss://[::1]:9000/ws/daemon",
  ])("the standard variables never proxy loopback (%s)", (server) => {
    expect(via(settings({}), server)).toBeNull();
  });

  test("MAKIMA_RELAY_UPSTREAM_PROXY proxies every server, loopback and NO_PROXY hosts included", () => {
    const s = settings({ upstreamProxy: "http://u:p@edge:3128/", noProxy: ["*"] });
    for (const server of ["wss://127.0.0.1/ws", "ws://localhost/ws", "wss://makima.example/ws"])
      expect(via(s, server)).toBe("http://u:p@edge:3128/");
  });

  test.each([
    [["*"], "wss://makima.example/ws", null],
    [["makima.example"], "wss://makima.example/ws", null],
    [["makima.example"], "wss://eu.makima.example/ws", null],
    [[".makima.example"], "wss://eu.makima.example/ws", null],
    [["*.makima.example"], "wss://eu.makima.example/ws", null],
    [["MAKIMA.example"], "wss://makima.EXAMPLE./ws", null],
    [["example"], "wss://makima.example/ws", null],
    [["ample"], "wss://makima.example/ws", PROXY],
    [["makima.example.org"], "wss://makima.example/ws", PROXY],
    [["makima.example:443"], "wss://makima.example/ws", null],
    [["makima.example:8443"], "wss://makima.example/ws", PROXY],
    [["makima.example:8443"], "wss://makima.example:8443/ws", null],
    [["10.0.0.7"], "wss://10.0.0.7:8443/ws", null],
    [["10.0.0.7"], "wss://10.0.0.70/ws", PROXY],
    [["fd00::7"], "wss://[fd00::7]/ws", null],
    [["[fd00::7]:443"], "wss://[fd00::7]/ws", null],
    [["[fd00::7]:443"], "wss://[fd00::7]:444/ws", PROXY],
    [[" other.example ", "makima.example"], "wss://makima.example/ws", null],
  ] as const)("NO_PROXY %j for %s: %s", (noProxy, server, expected) => {
    expect(via(settings({ noProxy: [...noProxy] }), server)).toBe(expected);
  });
});

describe("the proxy settings as the configuration reads them", () => {
  const io = { readFile: () => "", cwd: "/", hostname: "h" };
  const load = (env: Record<string, string>) => loadConfig(env, [], io);

  test("lower-case variables are read too; the upper-case one wins when both are set", () => {
    const lower = load({ https_proxy: "http://a:1", http_proxy: "b:2", no_proxy: "x, y" });
    expect(
      lower.ok && [
        lower.value.config.httpsProxy,
        lower.value.config.httpProxy,
        lower.value.config.noProxy,
      ],
    ).toEqual(["http://a:1/", "http://b:2/", ["x", "y"]]);
    const both = load({ HTTPS_PROXY: "http://upper:1", https_proxy: "http://lower:1" });
    expect(both.ok && both.value.config.httpsProxy).toBe("http://upper:1/");
    const flag = loadConfig({}, ["--upstream-proxy", "http://edge:3128"], io);
    expect(flag.ok && flag.value.config.upstreamProxy).toBe("http://edge:3128/");
  });

  test("only http:// proxies; a refused value is not shown, since it may hold a password", () => {
    const refused = load({ MAKIMA_RELAY_UPSTREAM_PROXY: "https://user:hunter2@edge:3128" });
    expect(refused).toEqual({
      ok: false,
      error:
        "MAKIMA_RELAY_UPSTREAM_PROXY (--upstream-proxy): the proxy URL must be http://host:port",
    });
    const broken = load({ HTTP_PROXY: "http://user:hunter2@[bad" });
    expect(broken.ok).toBe(false);
    expect(JSON.stringify(broken)).not.toContain("hunter2");
  });
});

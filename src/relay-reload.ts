/**
 * Changing secrets and the certificate without a restart (SIGHUP, or
 * POST /admin/reload). What is re-read: the `*_FILE` secrets (the upstream
 * API key, the daemon keys, the admin token) and the TLS certificate and key
 * files. Every other setting needs a restart, as in nginx or Caddy's reload of
 * secrets only. A file that cannot be read or parsed keeps its old value and
 * is named in the result; a reload never stops the relay.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { type Config, type Secrets, type SecretsReread, upstreamProblem } from "./config/config.ts";
import type { Relay } from "./core/relay.ts";
import type { Upstream } from "./core/upstream.ts";
import type { Logger } from "./log/logger.ts";
import { err, ok, type Result } from "./protocol/result.ts";
import type { SocketServer, TlsFiles } from "./transport/relay-socket-server.ts";

export type ReloadResult = "ok" | "error";

export interface ReloadOutcome {
  /** `error` when a file could not be used (it kept its old value); what could be read still applied. */
  result: ReloadResult;
  /** What changed: variable names, never values. */
  changed: string[];
  /** One line per file that could not be used, naming its variable and path. */
  errors: string[];
  /** MachineIds whose daemon key is no longer accepted (their daemons were closed with 4401). */
  revoked: string[];
}

export interface ReloadCounts {
  ok: number;
  error: number;
}

export interface ReloadParts {
  config: Config;
  /** The secrets as their sources say now (config/config.ts rereadSecrets). */
  reread: () => SecretsReread;
  readFile: (path: string) => string;
  relay: Pick<Relay, "replaceKeys">;
  upstream: Pick<Upstream, "setApiKey">;
  /** The certificate and key the listener serves now (null without TLS). */
  tls: TlsFiles | null;
  log: Logger;
}

export interface Reloader {
  /** The secrets in force (the admin token is read from here at each request). */
  readonly secrets: Readonly<Secrets>;
  readonly counts: Readonly<ReloadCounts>;
  /** The listener whose certificate a reload replaces (it is built after the HTTP app). */
  serveTlsWith(listener: Pick<SocketServer, "replaceTls">): void;
  reload(): ReloadOutcome;
}

export function createReloader(parts: ReloadParts): Reloader {
  const { config, log } = parts;
  const secrets: Secrets = {
    apiKey: config.apiKey,
    daemonKeys: [...config.daemonKeys],
    adminToken: config.adminToken,
  };
  let tls = parts.tls;
  const counts: ReloadCounts = { ok: 0, error: 0 };
  let listener: Pick<SocketServer, "replaceTls"> | null = null;
  const reload = (): ReloadOutcome => {
    const { secrets: next, errors } = parts.reread();
    // Masked before anything below can log them.
    log.addSecrets([next.apiKey ?? "", ...(next.daemonKeys ?? []), next.adminToken ?? ""]);
    const changed = applySecrets(secrets, next, parts);
    const revoked =
      changed.includes("MAKIMA_API_KEY") || changed.includes("MAKIMA_RELAY_DAEMON_KEYS")
        ? parts.relay.replaceKeys([secrets.apiKey ?? "", ...secrets.daemonKeys])
        : [];
    if (config.tlsCert && config.tlsKey && listener) {
      const read = readTlsFiles(config, parts.readFile);
      if (!read.ok) errors.push(read.error);
      else if (read.value.cert !== tls?.cert || read.value.key !== tls.key) {
        const swapped = replaceTls(listener, read.value);
        if (swapped === null) {
          tls = read.value;
          changed.push("MAKIMA_RELAY_TLS_CERT");
        } else errors.push(swapped);
      }
    }
    const result: ReloadResult = errors.length === 0 ? "ok" : "error";
    counts[result] += 1;
    log.log(result === "ok" ? "info" : "error", "reload", {
      result,
      changed,
      errors,
      revokedMachines: revoked.length,
    });
    return { result, changed, errors, revoked };
  };
  return {
    secrets,
    counts,
    serveTlsWith: (server) => {
      listener = server;
    },
    reload,
  };
}

/** Takes the re-read values that differ; returns the names of those that changed. */
function applySecrets(secrets: Secrets, next: Partial<Secrets>, parts: ReloadParts): string[] {
  const changed: string[] = [];
  if (next.apiKey !== undefined && next.apiKey !== secrets.apiKey) {
    secrets.apiKey = next.apiKey;
    changed.push("MAKIMA_API_KEY");
    const problem = upstreamProblem({ ...parts.config, apiKey: next.apiKey });
    parts.upstream.setApiKey(next.apiKey ?? "", problem);
  }
  if (next.daemonKeys !== undefined && !sameList(next.daemonKeys, secrets.daemonKeys)) {
    secrets.daemonKeys = [...next.daemonKeys];
    changed.push("MAKIMA_RELAY_DAEMON_KEYS");
  }
  if (next.adminToken !== undefined && next.adminToken !== secrets.adminToken) {
    secrets.adminToken = next.adminToken;
    changed.push("MAKIMA_RELAY_ADMIN_TOKEN");
  }
  return changed;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * The certificate and key files, checked before use: each parses, and the
 * key is the certificate's. (A certificate renewed before its key is written
 * is refused here, and the old pair kept, rather than served broken.)
 */
export function readTlsFiles(
  config: Config,
  readFile: (path: string) => string,
): Result<TlsFiles, string> {
  const certPath = config.tlsCert as string;
  const keyPath = config.tlsKey as string;
  let cert: string;
  let key: string;
  try {
    cert = readFile(certPath);
  } catch (e) {
    return err(`MAKIMA_RELAY_TLS_CERT ${certPath}: cannot read (${(e as Error).message})`);
  }
  try {
    key = readFile(keyPath);
  } catch (e) {
    return err(`MAKIMA_RELAY_TLS_KEY ${keyPath}: cannot read (${(e as Error).message})`);
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    return err(`MAKIMA_RELAY_TLS_CERT ${certPath}: not a PEM certificate`);
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) {
      return err(`MAKIMA_RELAY_TLS_KEY ${keyPath}: not the key of ${certPath}`);
    }
  } catch {
    return err(`MAKIMA_RELAY_TLS_KEY ${keyPath}: not a PEM private key`);
  }
  return ok({ cert, key });
}

/** Null when the listener now serves `tls`; else why not (it kept the old certificate). */
function replaceTls(server: Pick<SocketServer, "replaceTls">, tls: TlsFiles): string | null {
  try {
    server.replaceTls(tls);
    return null;
  } catch (e) {
    return `MAKIMA_RELAY_TLS_CERT: the listener refused the new certificate (${(e as Error).message}); the old one is kept`;
  }
}

/**
 * A private CA and two server certificates for 127.0.0.1/localhost, from the
 * committed fixtures in tests/fixtures/tls (valid until 2126; make.sh there
 * regenerates them with openssl), so the tests need no openssl and make no keys.
 * Each call copies them into a fresh directory that the test may overwrite
 * (to swap certificates) and removes afterwards.
 */
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const FIXTURES = resolve(import.meta.dir, "../fixtures/tls");
const FILES = ["ca.pem", "server.pem", "server.key", "second.pem", "second.key"] as const;

export interface TestKeyPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestCertificates extends TestKeyPair {
  dir: string;
  caFile: string;
  ca: string;
  /** Another certificate and key from the same CA for the same names: a replacement. */
  second: TestKeyPair;
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "makima-relay-tls-"));
  for (const file of FILES) copyFileSync(join(FIXTURES, file), join(dir, file));
  const pair = (name: string): TestKeyPair => ({
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}.key`),
    cert: readFileSync(join(dir, `${name}.pem`), "utf8"),
    key: readFileSync(join(dir, `${name}.key`), "utf8"),
  });
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    ca: readFileSync(join(dir, "ca.pem"), "utf8"),
    ...pair("server"),
    second: pair("second"),
  };
}

/**
 * The committed TLS fixtures (tests/fixtures/tls) that the TLS tests rely on:
 * both server certificates chain to the CA, match their keys, name localhost
 * and 127.0.0.1, stay valid for decades, and are told apart by fingerprint.
 */
import { afterAll, expect, test } from "bun:test";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { rmSync } from "node:fs";
import { makeCertificates } from "../helpers/tls.ts";

const certs = makeCertificates();
afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

const ca = new X509Certificate(certs.ca);
const YEAR_MS = 365 * 24 * 3600 * 1000;

test.each([
  ["server", certs],
  ["second", certs.second],
] as const)("the %s certificate is the CA's, matches its key and names both hosts", (_n, pair) => {
  const cert = new X509Certificate(pair.cert);
  expect({
    issued: cert.checkIssued(ca),
    signed: cert.verify(ca.publicKey),
    key: cert.checkPrivateKey(createPrivateKey(pair.key)),
    host: cert.checkHost("localhost"),
    ip: cert.checkIP("127.0.0.1"),
  }).toEqual({ issued: true, signed: true, key: true, host: "localhost", ip: "127.0.0.1" });
  expect(cert.validToDate.getTime()).toBeGreaterThan(Date.now() + 50 * YEAR_MS);
  expect(ca.validToDate.getTime()).toBeGreaterThan(Date.now() + 50 * YEAR_MS);
});

test("the two server certificates and keys are distinct", () => {
  const first = new X509Certificate(certs.cert);
  const second = new X509Certificate(certs.second.cert);
  expect(second.fingerprint256).not.toBe(first.fingerprint256);
  expect(certs.second.key).not.toBe(certs.key);
});

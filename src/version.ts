import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;

/**
 * Replaced by the commit the binary was built from (scripts/build-binary.ts
 * passes `--define MAKIMA_RELAY_COMMIT="<sha>"`); undeclared when run from
 * source, where `typeof` keeps it from throwing.
 */
declare const MAKIMA_RELAY_COMMIT: string;

/** The git commit of a compiled binary ("<sha>", "<sha>-dirty" or "unknown"); "dev" from source. */
export const COMMIT: string = typeof MAKIMA_RELAY_COMMIT === "string" ? MAKIMA_RELAY_COMMIT : "dev";

/** What `makima-relay --version` prints: `0.1.0 (commit <sha>)`, or `0.1.0 (dev)` from source. */
export function versionLine(): string {
  return COMMIT === "dev" ? `${VERSION} (dev)` : `${VERSION} (commit ${COMMIT})`;
}

/**
 * Elysia options every instance of this layer uses.
 *
 * `aot: false`: ahead-of-time compilation (Sucrose) reads handler source with
 * `toString()` and breaks when a minifier renames identifiers (elysia#740,
 * #1711; bun#12594). Our build is `--minify-whitespace --minify-syntax`, which
 * keeps names today, but the management API is low traffic, so we take the
 * dynamic handler and stay correct under any minifier. Setting it explicitly
 * also stops Elysia from reading `ELYSIA_AOT` from the environment.
 */
export const ELYSIA_CONFIG = { aot: false } as const;

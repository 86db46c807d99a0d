import { defineConfig } from "drizzle-kit";

// `bun run db:generate` writes a new migration into ./drizzle; it must then be
// registered in src/store/migrations.ts so the compiled binary embeds it.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/store/schema.ts",
  out: "./drizzle",
});

// `import x from "./file.sql" with { type: "text" }` yields the file's text (Bun
// loader); declared here because bun-types only covers *.txt.
declare module "*.sql" {
  const text: string;
  export default text;
}

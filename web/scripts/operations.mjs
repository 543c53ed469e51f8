// Writes src/generated/operations.ts: each operation of frontend-contract/operations by its
// trusted-document id, `sha256:` and the hex SHA-256 of the file's exact text, with its types.
// A subscription carries that exact text too: over WebSocket the portal takes a trusted
// document by its text.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const folder = join(here, "..", "..", "frontend-contract", "operations");
const lines = [
  "// Written by scripts/operations.mjs from frontend-contract/operations: do not edit.",
  'import type * as T from "./graphql";',
  "",
  "export interface Operation<TData, TVariables> {",
  "  readonly name: string;",
  "  readonly id: string;",
  "  readonly text?: string;",
  "  readonly __types?: [TData, TVariables];",
  "}",
  "",
];
for (const file of readdirSync(folder).filter((f) => f.endsWith(".graphql")).sort()) {
  const text = readFileSync(join(folder, file));
  const match = /\b(query|mutation|subscription)\s+(\w+)/.exec(text.toString("utf8"));
  if (!match) throw new Error(`${file} holds no named operation`);
  const [, kind, name] = match;
  const suffix = kind[0].toUpperCase() + kind.slice(1);
  const id = "sha256:" + createHash("sha256").update(text).digest("hex");
  lines.push(
    `export const ${name}: Operation<T.${name}${suffix}, T.${name}${suffix}Variables> = ` +
      `{ name: "${name}", id: "${id}"` +
      (kind === "subscription" ? `, text: ${JSON.stringify(text.toString("utf8"))}` : "") +
      " };",
  );
}
mkdirSync(join(here, "..", "src", "generated"), { recursive: true });
writeFileSync(join(here, "..", "src", "generated", "operations.ts"), lines.join("\n") + "\n");

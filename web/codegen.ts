import type { CodegenConfig } from "@graphql-codegen/cli";

// Types only: the documents themselves are sent by id (src/generated/operations.ts).
const config: CodegenConfig = {
  schema: "../frontend-contract/portal.graphql",
  documents: "../frontend-contract/operations/*.graphql",
  generates: {
    "src/generated/graphql.ts": {
      plugins: ["typescript", "typescript-operations"],
      config: {
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false, object: false, defaultValue: false },
        maybeValue: "T | null",
        scalars: { ID: "string", Date: "string", DateTime: "string" },
        skipTypename: true,
      },
    },
  },
  hooks: { afterAllFileWrite: ["node scripts/operations.mjs"] },
};

export default config;

// PostGraphile v5 as the portal benchmark runs it: the public schema of the bench database,
// no auth, no GraphiQL, no watch. bench/run.py sets DATABASE_URL, PORT and HOST.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  // Every column may be filtered (`condition`) and sorted (`orderBy`), as PostGraphile v4's
  // `ignoreIndexes` allowed; the portal's lists filter by status and sort by issue date.
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
    }),
  ],
  grafserv: {
    host: process.env.HOST ?? "127.0.0.1",
    port: Number(process.env.PORT ?? 5678),
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};

export default preset;

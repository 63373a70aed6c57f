// Lint Cypher with Neo4j's linter: stdin is a JSON array of queries, stdout a JSON array
// (same order) of diagnostic lists, each entry "SEVERITY line:col message" (1-based).
// The linter is resolved from the working directory, i.e. run this with cwd = the npm install dir.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const { lintCypherQuery, isNotParamError } = createRequire(`${process.cwd()}/`)(
  '@neo4j-cypher/language-support',
);

const SEVERITY = { 1: 'ERROR', 2: 'WARNING', 3: 'INFO', 4: 'HINT' };
// Cypher 5 and no schema, so unknown labels, properties, functions and procedures are not flagged.
const DB_SCHEMA = { defaultLanguage: 'CYPHER 5' };

const queries = JSON.parse(readFileSync(0, 'utf8'));
const results = queries.map((query) =>
  lintCypherQuery(query, DB_SCHEMA, { consoleCommandsEnabled: false })
    .diagnostics.filter(isNotParamError) // "$x is not defined": parameters are never declared here
    .map((d) => `${SEVERITY[d.severity]} ${d.range.start.line + 1}:${d.range.start.character + 1} ${d.message}`),
);
process.stdout.write(JSON.stringify(results));

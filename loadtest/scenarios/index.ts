import { callScenario } from './call.js';
import { restScenario } from './rest.js';
import { writesScenario } from './writes.js';
import { fanoutScenario } from './fanout.js';
import { connectScenario } from './connect.js';
import { chatScenario } from './chat.js';
import { graphqlScenario } from './graphql.js';
import { scaleScenario } from './scale.js';
import { writesPostgresScenario } from './writes-postgres.js';
import type { Scenario } from './scenario.js';

/** Every scenario, in the order `all` runs them. */
export const SCENARIOS: Scenario[] = [restScenario, connectScenario, callScenario, writesScenario, fanoutScenario, chatScenario, graphqlScenario];

/** Run only by name: they need services `all` does not (PostgreSQL; scale: PostgreSQL and Redis). */
export const SEPARATE_SCENARIOS: Scenario[] = [writesPostgresScenario, scaleScenario];

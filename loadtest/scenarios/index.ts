import { callScenario } from './call.js';
import { restScenario } from './rest.js';
import { writesScenario } from './writes.js';
import type { Scenario } from './scenario.js';

/** Every scenario, in the order `all` runs them. */
export const SCENARIOS: Scenario[] = [restScenario, callScenario, writesScenario];

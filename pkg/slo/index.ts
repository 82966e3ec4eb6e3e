export { SloEngine, SLO_MIGRATIONS, SHORT_WINDOWS, FAST_BURN, SLOW_BURN, type SloReport, type SloStatus, type SloWindowValue, type SloEngineOptions } from "./engine.js";
export { sloDefinitions, READ_METHODS, SERVER_ERROR_CODES, type SloDefinition, type SliCounts } from "./definitions.js";

import type { Command } from "../context.js";
import { versionCommand } from "./version.js";
import { infoCommand } from "./info.js";
import { statsCommands } from "./stats.js";

/** Every berthctl command; later areas (images, pods, streaming) add theirs here. */
export const commands: Command[] = [versionCommand, infoCommand, ...statsCommands];

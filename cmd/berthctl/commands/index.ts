import type { Command } from "../context.js";
import { versionCommand } from "./version.js";
import { infoCommand } from "./info.js";
import { attachCommand } from "./attach.js";
import { portForwardCommand } from "./port-forward.js";

/** Every berthctl command; later areas (images, pods, streaming) add theirs here. */
export const commands: Command[] = [versionCommand, infoCommand, attachCommand, portForwardCommand];

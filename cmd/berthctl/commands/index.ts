import type { Command } from "../context.js";
import { versionCommand } from "./version.js";
import { infoCommand } from "./info.js";
import { runpCommand, podsCommand, inspectpCommand, stoppCommand, rmpCommand } from "./pods.js";
import { pullCommand } from "./pull.js";
import { imagesCommand } from "./images.js";
import { inspectiCommand } from "./inspecti.js";
import { rmiCommand } from "./rmi.js";
import { imagefsinfoCommand } from "./imagefsinfo.js";
import { containerCommands } from "./containers.js";
import { attachCommand } from "./attach.js";
import { portForwardCommand } from "./port-forward.js";
import { statsCommands } from "./stats.js";
import { sloCommand } from "./slo.js";

/** Every berthctl command; later areas (images, pods, streaming) add theirs here. */
export const commands: Command[] = [
  versionCommand,
  infoCommand,
  runpCommand,
  podsCommand,
  inspectpCommand,
  stoppCommand,
  rmpCommand,
  pullCommand,
  imagesCommand,
  inspectiCommand,
  rmiCommand,
  imagefsinfoCommand,
  ...containerCommands,
  attachCommand,
  portForwardCommand,
  ...statsCommands,
  sloCommand,
];

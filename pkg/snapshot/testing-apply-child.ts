// Child process for the crash test: opens a snapshotter and applies one layer.
// argv: root dbFile blobPath mediaType diffId
import { setRootLogger } from "../log/index.js";
import { MetadataStore } from "../store/index.js";
import { Snapshotter } from "./snapshotter.js";

const [root, db, blobPath, mediaType, diffId] = process.argv.slice(2) as [string, string, string, string, string];
setRootLogger({ level: "silent" });
const store = MetadataStore.open(db);
const snap = await Snapshotter.open({ root, store, sync: false });
process.stdout.write("applying\n");
await snap.applyLayer({ chainId: diffId, parent: undefined, blobPath, mediaType, diffId });
process.stdout.write("done\n");

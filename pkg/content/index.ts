export { ContentStore, Ingest, Lease, ContentVerificationError, type BlobInfo, type Expected } from "./store.js";

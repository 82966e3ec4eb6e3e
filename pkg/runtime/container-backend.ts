import { AlreadyExistsError, NotFoundError } from "../errdefs/index.js";
import type { ImageService } from "../image/index.js";
import { mountAll, unmountAll, type Snapshotter } from "../snapshot/index.js";
import type { ContainerImages, RootfsProvider } from "./container.js";

/** The image store as the container layer sees it. */
export function containerImagesOf(images: ImageService): ContainerImages {
  return {
    find(refOrId) {
      const rec = images.images.find(refOrId);
      if (!rec) return undefined;
      return { id: rec.id, repoTags: rec.repoTags, repoDigests: rec.repoDigests, config: rec.config, chainId: rec.chainId };
    },
  };
}

/** Container root filesystems as active overlay snapshots of the image's top chain. */
export function containerRootfsOf(snapshotter: Snapshotter): RootfsProvider {
  return {
    async mount(key, chainId, target) {
      let mounts;
      try {
        mounts = await snapshotter.prepare(key, chainId, { labels: { "berth.container/rootfs": "true" } });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        mounts = snapshotter.mounts(key);
      }
      await mountAll(mounts, target);
    },
    async release(key, target) {
      await unmountAll(target);
      try {
        await snapshotter.remove(key);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    },
  };
}

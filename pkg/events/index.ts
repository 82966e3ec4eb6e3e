export { EventBus, eventsDropped, type EventBusOptions, type SubscribeOptions, type Subscription } from "./bus.js";
export { containerEventBus, eventTimeNs, type ContainerEvent, type ContainerEventKind } from "./container-event.js";

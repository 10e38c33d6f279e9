// The SDK's realtime subscriptions (with the `eventsource` package as EventSource on Node
// 20) against `nanodb serve`: create, update and delete events on `*` with options and on
// one record, rules per subscriber, and the reconnect after a server restart.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import PocketBase from "pocketbase";
import { EventSource } from "eventsource";
import { NanoServer, createUsers, ADMIN_EMAIL, ADMIN_PASSWORD, eventually } from "../lib/server.mjs";

globalThis.EventSource = EventSource;

let server;
let admin;

function client() {
  const pb = new PocketBase(server.url);
  pb.autoCancellation(false);
  return pb;
}

async function user(email) {
  const pb = client();
  await pb.collection("users").authWithPassword(email, "12345678");
  return pb;
}

/** Resolves after `ms` (to show that nothing more arrives). */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

before(async () => {
  server = await NanoServer.start();
  admin = client();
  await admin.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  await admin.collections.create({
    name: "posts",
    fields: [
      { name: "title", type: "text" },
      { name: "n", type: "number" },
    ],
    listRule: "",
    viewRule: "",
    createRule: "",
    updateRule: "",
    deleteRule: "",
  });
  const owner = "owner = @request.auth.id";
  await admin.collections.create({
    name: "notes",
    fields: [
      { name: "text", type: "text" },
      { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
    ],
    listRule: owner,
    viewRule: owner,
    createRule: "@request.auth.id != ''",
    updateRule: owner,
    deleteRule: owner,
  });
  await createUsers(admin, ["alice", "bob"]);
});

after(async () => {
  await server?.close();
});

test("create, update and delete events with a filter option", async () => {
  const pb = client();
  const events = [];
  const unsubscribe = await pb.collection("posts").subscribe("*", (event) => events.push(event), { filter: "n > 0" });
  assert.equal(pb.realtime.clientId.length, 40);
  const writer = client();
  const created = await writer.collection("posts").create({ title: "hello", n: 1 });
  await eventually(() => events.find((e) => e.action === "create" && e.record.id === created.id), 10_000, "the create event");
  assert.deepEqual(events[0].record, created);
  await writer.collection("posts").update(created.id, { title: "changed" });
  await eventually(() => events.find((e) => e.action === "update"), 10_000, "the update event");
  await writer.collection("posts").delete(created.id);
  const deleted = await eventually(() => events.find((e) => e.action === "delete"), 10_000, "the delete event");
  assert.equal(deleted.record.title, "changed", "a delete carries the last version");
  await writer.collection("posts").create({ title: "filtered out", n: 0 });
  await pause(300);
  assert.deepEqual(events.map((e) => e.action), ["create", "update", "delete"]);
  await unsubscribe();
  assert.equal(pb.realtime.isConnected, false, "the last unsubscribe closes the stream");
});

test("a record topic gets only that record's events", async () => {
  const writer = client();
  const watched = await writer.collection("posts").create({ title: "watched", n: 1 });
  const pb = client();
  const events = [];
  await pb.collection("posts").subscribe(watched.id, (event) => events.push(event));
  const other = await writer.collection("posts").create({ title: "other", n: 1 });
  await writer.collection("posts").update(other.id, { n: 2 });
  await writer.collection("posts").update(watched.id, { n: 3 });
  const update = await eventually(() => events.find((e) => e.action === "update"), 10_000, "the update");
  assert.equal(update.record.id, watched.id);
  await pause(300);
  assert.equal(events.length, 1);
  await pb.collection("posts").unsubscribe();
});

test("each subscriber sees only what its rules allow", async () => {
  const alice = await user("alice@example.com");
  const bob = await user("bob@example.com");
  const guest = client();
  const seen = { alice: [], bob: [], guest: [] };
  await alice.collection("notes").subscribe("*", (event) => seen.alice.push(event));
  await bob.collection("notes").subscribe("*", (event) => seen.bob.push(event));
  await guest.collection("notes").subscribe("*", (event) => seen.guest.push(event));
  const note = await alice.collection("notes").create({ text: "secret", owner: alice.authStore.record.id });
  await eventually(() => seen.alice.length === 1, 10_000, "alice's event");
  assert.equal(seen.alice[0].record.id, note.id);
  const bobsNote = await bob.collection("notes").create({ text: "bob's", owner: bob.authStore.record.id });
  await eventually(() => seen.bob.length === 1, 10_000, "bob's event");
  assert.equal(seen.bob[0].record.id, bobsNote.id);
  await pause(300);
  assert.equal(seen.alice.length, 1, "alice never sees bob's note");
  assert.equal(seen.guest.length, 0, "a guest sees no note");
  for (const pb of [alice, bob, guest]) await pb.realtime.unsubscribe();
});

test("events arrive again after the server restarts", async () => {
  const pb = client();
  const connects = [];
  const events = [];
  await pb.realtime.subscribe("PB_CONNECT", (event) => connects.push(event.clientId));
  await pb.collection("posts").subscribe("*", (event) => events.push(event));
  assert.equal(connects.length, 1);
  await server.restart();
  await eventually(() => connects.length >= 2, 20_000, "the reconnect");
  assert.notEqual(connects.at(-1), connects[0], "a new client id after the reconnect");
  // The SDK resubmits its subscriptions after PB_CONNECT; retry until an event comes.
  const writer = client();
  const created = await eventually(async () => {
    const record = await writer.collection("posts").create({ title: "after restart", n: 1 });
    await pause(200);
    return events.find((e) => e.record.id === record.id);
  }, 20_000, "an event after the restart");
  assert.equal(created.action, "create");
  await pb.realtime.unsubscribe();
});

// The SDK's batch (`pb.createBatch()`, always sent as multipart with `@jsonPayload`) against
// `nanodb serve`: create, update, delete and upsert in one transaction; a failing request
// rolls everything back and is named by its index; rules hold inside a batch.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import PocketBase from "pocketbase";
import { NanoServer, createUsers, ADMIN_EMAIL, ADMIN_PASSWORD } from "../lib/server.mjs";

let server;
let admin;

function client() {
  const pb = new PocketBase(server.url);
  pb.autoCancellation(false);
  return pb;
}

before(async () => {
  server = await NanoServer.start();
  admin = client();
  await admin.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  const owner = "owner = @request.auth.id";
  await admin.collections.create({
    name: "posts",
    fields: [
      { name: "title", type: "text", required: true },
      { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
    ],
    listRule: "",
    viewRule: "",
    createRule: "",
    updateRule: `owner = '' || ${owner}`,
    deleteRule: `owner = '' || ${owner}`,
  });
  await createUsers(admin, ["alice", "bob"]);
});

after(async () => {
  await server?.close();
});

test("create, update, delete and upsert in one batch", async () => {
  const pb = client();
  const first = await pb.collection("posts").create({ title: "first" });
  const second = await pb.collection("posts").create({ title: "second" });
  const batch = pb.createBatch();
  batch.collection("posts").create({ title: "b1" });
  batch.collection("posts").update(first.id, { title: "first, updated" });
  batch.collection("posts").delete(second.id);
  batch.collection("posts").upsert({ id: "abc123def456ghi", title: "upserted" });
  const results = await batch.send();
  assert.deepEqual(results.map((result) => result.status), [200, 200, 204, 200]);
  assert.equal(results[0].body.title, "b1");
  assert.equal(results[1].body.title, "first, updated");
  assert.equal(results[2].body, null);
  assert.equal(results[3].body.id, "abc123def456ghi");
  assert.equal((await pb.collection("posts").getOne("abc123def456ghi")).title, "upserted");
  const again = pb.createBatch();
  again.collection("posts").upsert({ id: "abc123def456ghi", title: "upserted twice" });
  assert.deepEqual((await again.send()).map((result) => result.status), [200]);
  assert.equal((await pb.collection("posts").getOne("abc123def456ghi")).title, "upserted twice");
});

test("a failing request rolls back the batch and is named by its index", async () => {
  const pb = client();
  const before = (await pb.collection("posts").getList(1, 1)).totalItems;
  const batch = pb.createBatch();
  batch.collection("posts").create({ title: "rolled back" });
  batch.collection("posts").create({ title: "" });
  let error;
  try {
    await batch.send();
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, "the batch must fail");
  assert.equal(error.status, 400);
  assert.equal(error.response.message, "Batch transaction failed.");
  assert.equal(error.response.data.requests["1"].code, "batch_request_failed");
  assert.equal(error.response.data.requests["1"].response.data.title.code, "validation_required");
  assert.equal((await pb.collection("posts").getList(1, 1)).totalItems, before, "nothing persisted");
});

test("rules hold per request inside a batch", async () => {
  const alice = client();
  const alicesAuth = await alice.collection("users").authWithPassword("alice@example.com", "12345678");
  const bob = client();
  await bob.collection("users").authWithPassword("bob@example.com", "12345678");
  const post = await alice.collection("posts").create({ title: "alice's", owner: alicesAuth.record.id });
  const batch = bob.createBatch();
  batch.collection("posts").create({ title: "bob's" });
  batch.collection("posts").delete(post.id);
  let error;
  try {
    await batch.send();
  } catch (caught) {
    error = caught;
  }
  assert.equal(error?.status, 400);
  assert.equal(error.response.data.requests["1"].response.status, 404);
  assert.equal((await alice.collection("posts").getOne(post.id)).title, "alice's");
  const own = alice.createBatch();
  own.collection("posts").delete(post.id);
  assert.deepEqual((await own.send()).map((result) => result.status), [204]);
});

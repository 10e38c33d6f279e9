// The official PocketBase SDK against `nanodb serve`: health, superuser and user auth,
// collection creation, records CRUD, list with filter, sort and pages, getFullList,
// getFirstListItem, and rules for guests, owners and others.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import PocketBase from "pocketbase";
import { NanoServer, createUsers, ADMIN_EMAIL, ADMIN_PASSWORD, tokenPayload } from "../lib/server.mjs";

const ID = /^[a-z0-9]{15}$/;
const DATE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$/;
const NOT_FOUND = { data: {}, message: "The requested resource wasn't found.", status: 404 };

let server;
let admin;
const users = {};

function client() {
  const pb = new PocketBase(server.url);
  pb.autoCancellation(false);
  return pb;
}

async function userClient(email, password) {
  const pb = client();
  await pb.collection("users").authWithPassword(email, password);
  return pb;
}

/** The ClientResponseError `promise` rejects with. */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected the call to fail");
}

before(async () => {
  server = await NanoServer.start();
  admin = client();
  await admin.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  Object.assign(users, await createUsers(admin, ["alice", "bob"]));
});

after(async () => {
  await server?.close();
});

test("health", async () => {
  assert.deepEqual(await client().health.check(), { code: 200, message: "API is healthy.", data: {} });
});

test("superuser auth", async () => {
  assert.equal(admin.authStore.isValid, true);
  assert.equal(admin.authStore.isSuperuser, true);
  assert.equal(admin.authStore.record.email, ADMIN_EMAIL);
  const guest = client();
  const error = await failure(guest.collections.getList(1, 10));
  assert.equal(error.status, 401);
});

test("user auth with password, refresh and failures", async () => {
  const pb = client();
  const auth = await pb.collection("users").authWithPassword("alice@example.com", "12345678");
  assert.equal(auth.token.split(".").length, 3);
  const payload = tokenPayload(auth.token);
  assert.equal(payload.type, "auth");
  assert.equal(payload.collectionId, "_pb_users_auth_");
  assert.equal(payload.id, users.alice.id);
  assert.ok(payload.exp > Date.now() / 1000);
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.isSuperuser, false);
  assert.equal(auth.record.email, "alice@example.com");
  assert.equal(auth.record.password, undefined);
  assert.equal(auth.record.tokenKey, undefined);

  const bad = await failure(client().collection("users").authWithPassword("alice@example.com", "wrong-password"));
  assert.equal(bad.status, 400);
  assert.equal(bad.response.message, "Failed to authenticate.");

  const refreshed = await pb.collection("users").authRefresh();
  assert.equal(refreshed.record.id, users.alice.id);
  assert.equal(tokenPayload(refreshed.token).id, users.alice.id);
  pb.authStore.clear();
  const unauthorized = await failure(pb.collection("users").authRefresh());
  assert.equal(unauthorized.status, 401);
});

test("collection creation", async () => {
  const posts = await admin.collections.create({
    name: "posts",
    type: "base",
    fields: [
      { name: "title", type: "text", required: true },
      { name: "n", type: "number" },
      { name: "published", type: "bool" },
      { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
    ],
    indexes: ["CREATE INDEX idx_posts_n ON posts (n)"],
    listRule: "published = true || @request.auth.id != ''",
    viewRule: "",
    createRule: "@request.auth.id != ''",
    updateRule: "owner = @request.auth.id",
    deleteRule: "owner = @request.auth.id",
  });
  assert.match(posts.id, /^pbc_\d+$/);
  assert.equal(posts.name, "posts");
  assert.ok(posts.fields.some((field) => field.name === "title" && field.required));
  const locked = await admin.collections.create({
    name: "locked",
    fields: [{ name: "t", type: "text" }],
  });
  assert.equal(locked.listRule, null);
  const viewed = await admin.collections.getOne("posts");
  assert.equal(viewed.id, posts.id);
  const list = await admin.collections.getFullList();
  assert.ok(list.some((collection) => collection.name === "posts"));
});

test("records CRUD", async () => {
  const pb = await userClient("alice@example.com", "12345678");
  const posts = pb.collection("posts");
  const created = await posts.create({ title: "a", n: 1, published: true, owner: users.alice.id });
  assert.match(created.id, ID);
  assert.equal(created.collectionName, "posts");
  assert.match(created.collectionId, /^pbc_/);
  assert.match(created.created, DATE);
  assert.match(created.updated, DATE);
  assert.deepEqual(await posts.getOne(created.id), created);

  await new Promise((resolve) => setTimeout(resolve, 5));
  const updated = await posts.update(created.id, { title: "b", "n+": 2 });
  assert.equal(updated.n, 3);
  assert.equal(updated.title, "b");
  assert.notEqual(updated.updated, created.updated);

  const invalid = await failure(posts.create({ title: "", owner: users.alice.id }));
  assert.equal(invalid.status, 400);
  assert.equal(invalid.response.data.title.code, "validation_required");

  // A FormData body is sent as multipart: plain fields have their types inferred.
  const form = new FormData();
  form.append("title", "form");
  form.append("n", "5");
  form.append("published", "true");
  form.append("owner", users.alice.id);
  const fromForm = await posts.create(form);
  assert.equal(fromForm.n, 5);
  assert.equal(fromForm.published, true);
  // Files are not supported yet: a clear 400, not a crash.
  const upload = await failure(posts.create({ title: "f", owner: users.alice.id, doc: new Blob(["x"]) }));
  assert.equal(upload.status, 400);
  assert.match(upload.response.message, /File uploads are not supported/);

  assert.equal(await posts.delete(created.id), true);
  assert.equal(await posts.delete(fromForm.id), true);
  const gone = await failure(posts.getOne(created.id));
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.response, NOT_FOUND);
});

test("list with filter, sort and pages; getFullList; getFirstListItem", async () => {
  const pb = await userClient("alice@example.com", "12345678");
  const posts = pb.collection("posts");
  for (let n = 1; n <= 5; n++) {
    await posts.create({ title: `x${n}`, n, published: true, owner: users.alice.id });
  }
  const filter = pb.filter("n >= {:min} && title ~ {:t}", { min: 2, t: "x" });
  const first = await posts.getList(1, 2, { filter, sort: "-n,+title" });
  assert.equal(first.page, 1);
  assert.equal(first.perPage, 2);
  assert.equal(first.totalItems, 4);
  assert.equal(first.totalPages, 2);
  assert.deepEqual(first.items.map((item) => item.n), [5, 4]);
  const last = await posts.getList(2, 2, { filter, sort: "-n,+title" });
  assert.deepEqual(last.items.map((item) => item.n), [3, 2]);
  const beyond = await posts.getList(3, 2, { filter });
  assert.equal(beyond.items.length, 0);
  const skipped = await posts.getList(1, 2, { filter, skipTotal: true });
  assert.equal(skipped.totalItems, -1);
  assert.equal(skipped.totalPages, -1);

  const all = await posts.getFullList({ sort: "n", filter: 'title ~ "x"' });
  assert.deepEqual(all.map((item) => item.title), ["x1", "x2", "x3", "x4", "x5"]);
  const paged = await posts.getFullList({ sort: "n", filter: 'title ~ "x"', batch: 2 });
  assert.deepEqual(paged.map((item) => item.title), ["x1", "x2", "x3", "x4", "x5"]);
  const capped = await posts.getList(1, 5000, { filter: 'title ~ "x"' });
  assert.equal(capped.perPage, 1000, "perPage is capped and echoed");

  const one = await posts.getFirstListItem('title = "x3"');
  assert.equal(one.n, 3);
  const none = await failure(posts.getFirstListItem('title = "nothing"'));
  assert.equal(none.status, 404);
  const unknown = await failure(posts.getList(1, 30, { filter: "unknownField = 1" }));
  assert.equal(unknown.status, 400);
  const request = await failure(posts.getList(1, 30, { filter: "@request.auth.id != ''" }));
  assert.equal(request.status, 403);
  const expanded = await posts.getFirstListItem('title = "x1"', { expand: "owner", fields: "title,expand.owner.name" });
  assert.deepEqual(expanded, { title: "x1", expand: { owner: { name: "alice" } } });
});

test("rules for guests, owners and others", async () => {
  const alice = await userClient("alice@example.com", "12345678");
  const bob = await userClient("bob@example.com", "12345678");
  const guest = client();
  const hidden = await alice.collection("posts").create({ title: "draft", n: 100, published: false, owner: users.alice.id });

  const seenByGuest = await guest.collection("posts").getFullList();
  assert.ok(seenByGuest.length > 0);
  assert.ok(seenByGuest.every((item) => item.published), "guests list only published posts");
  const seenByBob = await bob.collection("posts").getFullList();
  assert.ok(seenByBob.some((item) => item.id === hidden.id), "any user lists every post");
  assert.equal((await guest.collection("posts").getOne(hidden.id)).id, hidden.id, "viewRule is open");

  const guestCreate = await failure(guest.collection("posts").create({ title: "g" }));
  assert.equal(guestCreate.status, 400, "createRule needs a user");
  // One call at a time: a call started before the previous one is awaited could reject
  // unobserved, which the test runner counts as a failure of its own.
  for (const call of [
    () => bob.collection("posts").update(hidden.id, { title: "bob was here" }),
    () => bob.collection("posts").delete(hidden.id),
    () => guest.collection("posts").delete(hidden.id),
  ]) {
    const error = await failure(call());
    assert.equal(error.status, 404, "others cannot update or delete");
  }
  const mine = await alice.collection("posts").update(hidden.id, { published: true });
  assert.equal(mine.published, true);

  // users: each sees only themselves (PocketBase's default rules).
  const bobsView = await bob.collection("users").getFullList();
  assert.deepEqual(bobsView.map((user) => user.id), [users.bob.id]);
  const other = await failure(bob.collection("users").getOne(users.alice.id));
  assert.equal(other.status, 404);

  // A locked rule is for superusers only.
  for (const pb of [guest, bob]) {
    const error = await failure(pb.collection("locked").getList());
    assert.equal(error.status, 403);
    assert.equal(error.response.message, "Only superusers can perform this action.");
  }
  assert.equal((await admin.collection("locked").getList()).totalItems, 0);
});

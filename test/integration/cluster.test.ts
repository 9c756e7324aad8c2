// test/integration: the cluster runtime — node processes on real NATS, presence crossing nodes,
// one message per watching node, presentities moving home, and a NATS server killed under load.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { homeOf } from "../../transport/placement.js";
import {
  type ClusterView,
  cliPath,
  cluster,
  type NodeHandle,
  notifies,
  type Scene,
  scene,
  startNatsCluster,
  startNatsServer,
  waitFor,
} from "./harness.js";
import { etagOf, SipPublisher } from "./sip-client.js";

const fast = ["--heartbeat", "200", "--dead-after", "3000"];

function doc(user: string, note: string, tuple = "seq"): string {
  return `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@127.0.0.1"><tuple id="${tuple}"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;
}

/** A user whose presentity is homed on `node` among `candidates`. */
function userHomedOn(node: string, candidates: string[], prefix: string): string {
  for (let i = 0; ; i += 1) {
    const user = `${prefix}${i}`;
    if (homeOf(`sip:${user}@127.0.0.1`, candidates) === node) return user;
  }
}

function noteOf(body: Buffer): string | undefined {
  return /<note>([^<]*)<\/note>/.exec(body.toString("utf8"))?.[1];
}

async function startCluster(
  s: Scene,
  ids: string[],
  nats: (i: number) => string,
): Promise<NodeHandle[]> {
  const nodes = await Promise.all(
    ids.map((id, i) =>
      s.startNode({
        id,
        role: i === 0 ? "primary" : "server",
        args: ["--nats", nats(i), ...fast],
      }),
    ),
  );
  await seeHomes(nodes, ids);
  return nodes;
}

/** Waits until every node places presentities on exactly `homes`. */
async function seeHomes(nodes: NodeHandle[], homes: string[]): Promise<void> {
  const want = [...homes].sort().join(",");
  await waitFor(
    async () => {
      for (const node of nodes) {
        const view = (await cluster(node)) as ClusterView & { homes: string[] };
        if (view.homes.join(",") !== want) return false;
      }
      return true;
    },
    { what: `every node to place presentities on ${want}`, nodes, timeoutMs: 15_000 },
  );
}

async function stats(node: NodeHandle): Promise<Record<string, number>> {
  return ((await cluster(node)) as unknown as { stats: Record<string, number> }).stats;
}

describe("cluster - presence across nodes over NATS", () => {
  it(
    "cluster - a watcher on A gets, in CSeq order, each of 1,000 publications made on B for a presentity homed on C",
    scene("cluster", async (s) => {
      const nats = await startNatsServer(s.dir);
      const [a, b] = await startCluster(s, ["a", "b", "c"], () => nats.url);
      assert.ok(a && b);
      const user = userHomedOn("c", ["a", "b", "c"], "far");
      const count = 1000;
      const watcher = await s.startSipp({
        scenario: "watcher.xml",
        transport: "udp",
        target: a.sip,
        service: user,
        vars: { expires: "600", notifies: String(count) },
        timeoutS: 180,
      });
      await waitFor(async () => (await cluster(a)).subscriptions === 1, {
        what: "the watcher's subscription on A",
        nodes: [a],
      });

      const publisher = await SipPublisher.open();
      try {
        let etag: string | undefined;
        for (let n = 0; n < count; n += 1) {
          const answer = await publisher.publish(b.sipPort, user, doc(user, `seq ${n}`), {
            expires: 600,
            ...(etag ? { etag } : {}),
          });
          assert.equal(answer.status, 200, `publication ${n}: ${answer.status} ${answer.reason}`);
          etag = etagOf(answer);
        }
      } finally {
        await publisher.close();
      }
      const result = await watcher.done;
      assert.equal(result.code, 0, result.describe());

      // The first NOTIFY (nothing published yet) and one per publication; the watcher's own
      // refresh at the end brings one more, which is not a publication. A NOTIFY the node sent
      // again over UDP (our 200 came after its T1, as on a loaded machine) is the same request,
      // same CSeq: counted once.
      const seen = new Set<string>();
      const received = notifies(result.trace)
        .filter((m) => (m.header("subscription-state") ?? "").startsWith("active"))
        .filter((m) => {
          const cseq = m.header("cseq") ?? "";
          if (seen.has(cseq)) return false;
          seen.add(cseq);
          return true;
        })
        .slice(0, count + 1);
      const cseqs = received.map((m) => Number.parseInt(m.header("cseq") ?? "", 10));
      for (let i = 1; i < cseqs.length; i += 1) {
        assert.equal(cseqs[i], (cseqs[i - 1] ?? 0) + 1, `NOTIFY CSeq ${i} not the next one`);
      }
      const notes = received.map((m) => noteOf(m.body)).filter((n) => n !== undefined);
      assert.deepEqual(
        notes,
        Array.from({ length: count }, (_, n) => `seq ${n}`),
        "every publication once, in order",
      );
    }),
  );

  it(
    "cluster - one PUBLISH to 200 watchers over 3 nodes is one cross-node message per watching node",
    scene("cluster", async (s) => {
      const nats = await startNatsServer(s.dir);
      const nodes = await startCluster(s, ["a", "b", "c"], () => nats.url);
      const user = userHomedOn("a", ["a", "b", "c"], "crowd");
      const share = [67, 67, 66];
      const watchers = await Promise.all(
        nodes.map((node, i) =>
          s.startSipp({
            scenario: "watcher.xml",
            transport: "udp",
            target: node.sip,
            service: user,
            vars: { expires: "600", notifies: "1" },
            calls: share[i] ?? 0,
            rate: 200,
            timeoutS: 60,
          }),
        ),
      );
      await waitFor(
        async () => {
          const views = await Promise.all(nodes.map((n) => cluster(n)));
          return views.every((v, i) => v.subscriptions === share[i]);
        },
        { what: "200 subscriptions, spread over the three nodes", nodes },
      );
      const home = nodes[0];
      assert.ok(home);
      const before = (await stats(home)).fanoutMessages ?? 0;
      const publisher = await SipPublisher.open();
      try {
        const answer = await publisher.publish(home.sipPort, user, doc(user, "hello all"), {
          expires: 600,
        });
        assert.equal(answer.status, 200);
      } finally {
        await publisher.close();
      }
      const results = await Promise.all(watchers.map((w) => w.done));
      for (const result of results) assert.equal(result.code, 0, result.describe());
      const dialogs = new Set(
        results
          .flatMap((r) => notifies(r.trace))
          .filter((m) => noteOf(m.body) === "hello all")
          .map((m) => m.header("call-id")),
      );
      assert.equal(dialogs.size, 200, "every watcher got the NOTIFY");
      assert.equal(
        ((await stats(home)).fanoutMessages ?? 0) - before,
        2,
        "the home sent one message to each of the two other watching nodes",
      );
    }),
  );

  it(
    "cluster - presentities moving home on a join and a clean leave keep state, ETags and watchers",
    scene("cluster", async (s) => {
      const nats = await startNatsServer(s.dir);
      const [a, b] = await startCluster(s, ["a", "b"], () => nats.url);
      assert.ok(a && b);
      const users = Array.from({ length: 24 }, (_, i) => `mover${i}`);
      const watched = userHomedOn("c", ["a", "b", "c"], "mover");
      if (!users.includes(watched)) users.push(watched);
      const publisher = await SipPublisher.open();
      try {
        const etags = new Map<string, string>();
        for (const user of users) {
          const answer = await publisher.publish(a.sipPort, user, doc(user, "before"), {
            expires: 600,
          });
          etags.set(user, etagOf(answer));
        }
        const watcher = await s.startSipp({
          scenario: "watcher-until.xml",
          transport: "udp",
          target: b.sip,
          service: watched,
          vars: { expires: "600" },
          timeoutS: 90,
        });
        await watcher.waitForMessage(
          (m) => m.direction === "received" && m.method === "NOTIFY",
          "first NOTIFY",
        );

        // A node joins: the presentities whose home it wins move to it, state and all.
        const c = await s.startNode({
          id: "c",
          role: "server",
          args: ["--nats", nats.url, ...fast],
        });
        await seeHomes([a, b, c], ["a", "b", "c"]);
        await waitFor(async () => (await cluster(c)).presentities > 0, {
          what: "presentities to arrive on the new node",
          nodes: [a, b, c],
        });
        const refreshAll = async (via: NodeHandle): Promise<void> => {
          for (const user of users) {
            const answer = await publisher.publish(via.sipPort, user, undefined, {
              expires: 600,
              etag: etags.get(user) ?? "",
            });
            assert.equal(answer.status, 200, `refresh of ${user} with its ETag: ${answer.status}`);
            etags.set(user, etagOf(answer));
          }
        };
        await refreshAll(b);
        const onC = (await cluster(c)).publications;
        assert.ok(onC > 0, "publications live on the new node");

        // It leaves cleanly: its presentities go back, still refreshable with their ETags.
        assert.equal(await c.stop(), 0);
        await seeHomes([a, b], ["a", "b"]);
        await refreshAll(a);
        const views = await Promise.all([cluster(a), cluster(b)]);
        assert.equal(
          views.reduce((sum, v) => sum + v.publications, 0),
          users.length,
          "every publication survived both moves",
        );
        // The watcher of a presentity that moved twice still gets its NOTIFYs.
        const last = await publisher.publish(
          b.sipPort,
          watched,
          doc(watched, "final-note-reached"),
          {
            expires: 600,
            etag: etags.get(watched) ?? "",
          },
        );
        assert.equal(last.status, 200);
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
      } finally {
        await publisher.close();
      }
    }),
  );

  it(
    "cluster - killing the NATS server a node uses loses no acknowledged PUBLISH and no subscription",
    scene("cluster", async (s) => {
      const servers = await startNatsCluster(s.dir, 3);
      const urls = servers.map((server) => server.url);
      // Each node starts on its own server; the client learns the others from the cluster.
      const [a, b, c] = await startCluster(s, ["a", "b", "c"], (i) => urls[i] ?? "");
      assert.ok(a && b && c);
      const user = userHomedOn("b", ["a", "b", "c"], "steady");
      const watcher = await s.startSipp({
        scenario: "watcher-until.xml",
        transport: "udp",
        target: a.sip,
        service: user,
        vars: { expires: "600" },
        timeoutS: 120,
      });
      await waitFor(async () => (await cluster(a)).subscriptions === 1, {
        what: "the watcher's subscription on A",
        nodes: [a],
      });
      const publisher = await SipPublisher.open();
      try {
        let etag: string | undefined;
        let acknowledged = "";
        const publishUntilAcknowledged = async (note: string): Promise<void> => {
          for (;;) {
            const answer = await publisher.publish(c.sipPort, user, doc(user, note), {
              expires: 600,
              ...(etag ? { etag } : {}),
            });
            if (answer.status === 200) {
              etag = etagOf(answer);
              acknowledged = note;
              return;
            }
            // Not acknowledged (the cluster is re-routing): RFC 3903 says try again.
            assert.equal(answer.status, 503, `${note}: ${answer.status} ${answer.reason}`);
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        };
        for (let n = 0; n < 20; n += 1) await publishUntilAcknowledged(`before ${n}`);
        await servers[0]?.kill();
        for (let n = 0; n < 20; n += 1) await publishUntilAcknowledged(`during ${n}`);
        await waitFor(
          async () =>
            (await cluster(a)).nodes.length === 3 && (await cluster(a)).subscriptions === 1,
          { what: "node A back on the cluster with its subscription", nodes: [a, b, c] },
        );
        await publishUntilAcknowledged("final-note-reached");
        assert.equal(acknowledged, "final-note-reached");
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        const last = notifies(result.trace)
          .filter((m) => (m.header("subscription-state") ?? "").startsWith("active"))
          .at(-1);
        assert.equal(last && noteOf(last.body), "final-note-reached");
        const home = (await cluster(b)).publications;
        assert.equal(home, 1, "the home kept exactly the acknowledged publication");
      } finally {
        await publisher.close();
      }
    }),
  );

  it(
    "cluster - a PUBLISH whose home does not answer gets 503 with Retry-After, never a 200",
    scene("cluster", async (s) => {
      const nats = await startNatsServer(s.dir);
      const nodes = await Promise.all(
        ["a", "b"].map((id) =>
          s.startNode({
            id,
            role: "server",
            args: [
              "--nats",
              nats.url,
              "--heartbeat",
              "200",
              "--dead-after",
              "20000",
              "--ask-timeout",
              "500",
            ],
          }),
        ),
      );
      const [a, b] = nodes;
      assert.ok(a && b);
      await seeHomes(nodes, ["a", "b"]);
      const user = userHomedOn("b", ["a", "b"], "frozen");
      const publisher = await SipPublisher.open();
      try {
        b.freeze();
        const refused = await publisher.publish(a.sipPort, user, doc(user, "lost?"), {
          expires: 600,
        });
        assert.equal(refused.status, 503, `${refused.status} ${refused.reason}`);
        assert.match(String(refused.headers["retry-after"]), /^\d+$/);
        b.thaw();
        const retried = await publisher.publish(a.sipPort, user, doc(user, "kept"), {
          expires: 600,
        });
        assert.equal(retried.status, 200, "the retry is applied once the home answers again");
        etagOf(retried);
      } finally {
        b.thaw();
        await publisher.close();
      }
    }),
  );
});

describe("cluster - the embedded default", () => {
  it(
    "cluster - start runs a primary, two servers and a pool node in one process, presence crossing them",
    scene("cluster", async (s) => {
      const child = spawn(
        process.execPath,
        [
          cliPath,
          "start",
          "--sip",
          "udp://127.0.0.1:0",
          "--http",
          "127.0.0.1:0",
          "--log-level",
          "warn",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
      });
      child.stderr.resume();
      const exited = once(child, "exit");
      try {
        const started = await waitFor(
          async () => {
            const sip = [...out.matchAll(/SIP +udp\+tcp (127\.0\.0\.1:\d+)/g)].map(
              (m) => m[1] ?? "",
            );
            const admin = [...out.matchAll(/admin +http:\/\/(127\.0\.0\.1:\d+)/g)].map(
              (m) => m[1] ?? "",
            );
            return sip.length === 4 && admin.length === 4 ? { sip, admin } : false;
          },
          { what: "the embedded cluster to print its four nodes", timeoutMs: 15_000 },
        );
        const view = (await (await fetch(`http://${started.admin[0]}/api/cluster`)).json()) as {
          nodes: Array<{ id: string; role: string }>;
          homes: string[];
        };
        assert.deepEqual(
          view.nodes.map((n) => `${n.id}:${n.role}`),
          ["pool1:pool", "primary:primary", "s1:server", "s2:server"],
        );
        assert.deepEqual(view.homes, ["primary", "s1", "s2"]);
        const user = userHomedOn("s2", ["primary", "s1", "s2"], "embedded");
        const watcher = await s.startSipp({
          scenario: "watcher-until.xml",
          transport: "udp",
          target: started.sip[1] ?? "",
          service: user,
          vars: { expires: "600" },
          timeoutS: 30,
        });
        await watcher.waitForMessage(
          (m) => m.direction === "received" && m.method === "NOTIFY",
          "the first NOTIFY",
        );
        const publisher = await SipPublisher.open();
        try {
          const port = Number(started.sip[0]?.split(":")[1]);
          const answer = await publisher.publish(port, user, doc(user, "final-note-reached"), {
            expires: 600,
          });
          assert.equal(answer.status, 200);
        } finally {
          await publisher.close();
        }
        const result = await watcher.done;
        assert.equal(result.code, 0, result.describe());
        child.kill("SIGTERM");
        const [code] = await exited;
        assert.equal(code, 0);
      } finally {
        child.kill("SIGKILL");
      }
    }),
  );
});

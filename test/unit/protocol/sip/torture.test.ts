// test/unit/protocol/sip: RFC 4475 torture messages (§3.1.1 valid, §3.1.2 invalid, plus §3.2/§3.3 ones a UAS
// meets) typed as arrays of lines; non-printable octets are written as \xNN escapes in latin1 strings.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessage, SipParseError } from "../../../../protocol/sip/codec.js";
import { parseUri } from "../../../../protocol/sip/headers.js";
import type { SipMessage, SipRequest, SipResponse } from "../../../../protocol/sip/message.js";

/** Lines joined with CRLF; the last element is usually the body (or "" for none). */
function msg(...lines: string[]): Buffer {
  return Buffer.from(lines.join("\r\n"), "latin1");
}

/** The SDP body RFC 4475 reuses (150 octets with a 9-character address). */
function sdp(origin: string, connection: string, timing = "t=0 0"): string[] {
  return [
    "v=0",
    `o=mhandley 29739 7272939 IN IP4 ${origin}`,
    "s=-",
    `c=IN IP4 ${connection}`,
    timing,
    "m=audio 49217 RTP/AVP 0 12",
    "m=video 3227 RTP/AVP 31",
    "a=rtpmap:31 LPC",
    "",
  ];
}

function utf8(latin1: string): string {
  return Buffer.from(latin1, "latin1").toString("utf8");
}

function request(message: SipMessage): SipRequest {
  assert.equal(message.kind, "request");
  return message as SipRequest;
}

function response(message: SipMessage): SipResponse {
  assert.equal(message.kind, "response");
  return message as SipResponse;
}

function rejects(data: Buffer, reason: string, withPartial: boolean): SipParseError {
  try {
    parseMessage(data);
  } catch (error) {
    assert.ok(error instanceof SipParseError, String(error));
    assert.equal(error.reason, reason);
    assert.equal(error.partial !== undefined, withPartial, `partial expected: ${withPartial}`);
    return error;
  }
  assert.fail(`expected SipParseError "${reason}"`);
}

describe("RFC 4475 §3.1.1 valid messages", () => {
  it("torture - 3.1.1.1 wsinv: a short tortuous INVITE", () => {
    const m = request(
      parseMessage(
        msg(
          "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
          "TO :",
          " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
          'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
          "  ;",
          "  tag = 98asjd8",
          "MaX-fOrWaRdS: 0068",
          "Call-ID: wsinv.ndaksdj@192.0.2.1",
          "Content-Length   : 150",
          "cseq: 0009",
          "  INVITE",
          "Via  : SIP  /   2.0",
          " /UDP",
          "    192.0.2.2;branch=390skdjuw",
          "s :",
          "NewFangledHeader:   newfangled value",
          " continued newfangled value",
          "UnknownHeaderWithUnusualValue: ;;,,;;,;",
          "Content-Type: application/sdp",
          "Route:",
          " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
          "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
          "  branch  =   z9hG4bK9ikj8  ,",
          " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
          " z9hG4bK30239",
          'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
          "      newvalue ;",
          "  secondparam ; q = 0.33",
          "",
          ...sdp("192.0.2.3", "192.0.2.4"),
        ),
      ),
    );
    assert.equal(m.uri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
    assert.deepEqual(m.headers.to, {
      uri: "sip:vivekg@chair-dnrc.example.com",
      params: { tag: "1918181833n" },
    });
    assert.deepEqual(m.headers.from, {
      name: 'J Rosenberg \\"',
      uri: "sip:jdrosen@example.com",
      params: { tag: "98asjd8" },
    });
    assert.equal(m.headers["max-forwards"], "0068");
    assert.deepEqual(m.headers.cseq, { seq: 9, method: "INVITE" });
    assert.deepEqual(
      m.headers.via.map((via) => [via.protocol, via.host, via.params.branch]),
      [
        ["UDP", "192.0.2.2", "390skdjuw"],
        ["TCP", "spindle.example.com", "z9hG4bK9ikj8"],
        ["UDP", "192.168.255.111", "z9hG4bK30239"],
      ],
    );
    assert.equal(m.headers.subject, "");
    assert.equal(m.headers.newfangledheader, "newfangled value continued newfangled value");
    assert.equal(m.headers.unknownheaderwithunusualvalue, ";;,,;;,;");
    assert.deepEqual(m.headers.route, [
      { uri: "sip:services.example.com;lr;unknownwith=value;unknown-no-value", params: {} },
    ]);
    assert.deepEqual(m.headers.contact, [
      {
        name: 'Quoted string ""',
        uri: "sip:jdrosen@example.com",
        params: { newparam: "newvalue", secondparam: null, q: "0.33" },
      },
    ]);
    assert.equal(m.body.length, 150);
  });

  it("torture - 3.1.1.2 intmeth: wide range of valid characters", () => {
    const m = request(
      parseMessage(
        msg(
          "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0",
          "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
          'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>',
          "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\xD1\x80\xD0\xB0\xD0\xB1\xD0\xBE\xD1\x82\xD0\xB0\xD1\x8E\xD1\x89\xD0\xB8\xD0\xB9\";tag=_token~1'+`*%!-.",
          "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
          "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~",
          "Max-Forwards: 255",
          "extensionHeader-!.%*+_`'~:\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB",
          "Content-Length: 0",
          "",
          "",
        ),
      ),
    );
    assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
    assert.equal(
      parseUri(m.uri)?.user,
      "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)",
    );
    assert.equal(m.headers.via[0]?.params.branch, "z9hG4bK-.!%66*_+`'~");
    assert.equal(m.headers.to.name, "BEL:\x07 NUL:\x00 DEL:\x7F");
    assert.equal(m.headers.from.name, "token1~` token2'+_ token3*%!.-");
    assert.equal(utf8(m.headers.from.params["fromparam''~+*_!.-%"] ?? ""), "работающий");
    assert.equal(m.headers.from.params.tag, "_token~1'+`*%!-.");
    assert.equal(m.headers["call-id"], "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert.equal(m.headers.cseq.method, m.method);
    assert.equal(utf8(m.headers["extensionheader-!.%*+_`'~"] as string), "\uFEFF大停電");
  });

  it("torture - 3.1.1.3 esc01: valid use of the % escaping mechanism (escapes kept as written)", () => {
    const m = request(
      parseMessage(
        msg(
          "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
          "To: sip:%75se%72@example.com",
          "From: <sip:I%20have%20spaces@example.net>;tag=938",
          "Max-Forwards: 87",
          "i: esc01.239409asdfakjkn23onasd0-3234",
          "CSeq: 234234 INVITE",
          "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
          "C: application/sdp",
          "Contact:",
          "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
          "Content-Length: 150",
          "",
          ...sdp("192.0.2.1", "192.0.2.1"),
        ),
      ),
    );
    assert.equal(parseUri(m.uri)?.user, "sips%3Auser%40example.com");
    assert.equal(parseUri(m.uri)?.host, "example.net");
    assert.equal(parseUri(m.headers.to.uri)?.user, "%75se%72");
    assert.equal(m.headers["call-id"], "esc01.239409asdfakjkn23onasd0-3234");
    assert.equal(m.headers["content-type"], "application/sdp");
    const contact = parseUri(m.headers.contact?.[0]?.uri ?? "");
    assert.deepEqual(contact?.params, { "%6c%72": null, "n%61me": "v%61lue%25%34%31" });
  });

  it("torture - 3.1.1.4 escnull: escaped NULs in URIs", () => {
    const m = request(
      parseMessage(
        msg(
          "REGISTER sip:example.com SIP/2.0",
          "To: sip:null-%00-null@example.com",
          "From: sip:null-%00-null@example.com;tag=839923423",
          "Max-Forwards: 70",
          "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
          "CSeq: 14398234 REGISTER",
          "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
          "Contact: <sip:%00@host5.example.com>",
          "Contact: <sip:%00%00@host5.example.com>",
          "L:0",
          "",
          "",
        ),
      ),
    );
    assert.equal(m.headers.to.uri, "sip:null-%00-null@example.com");
    assert.deepEqual(
      m.headers.contact?.map((c) => c.uri),
      ["sip:%00@host5.example.com", "sip:%00%00@host5.example.com"],
    );
  });

  it("torture - 3.1.1.5 esc02: % that is not an escape, in methods and header names", () => {
    const m = request(
      parseMessage(
        msg(
          "RE%47IST%45R sip:registrar.example.com SIP/2.0",
          'To: "%Z%45" <sip:resource@example.com>',
          'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23',
          "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
          "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234",
          "CSeq: 29344 RE%47IST%45R",
          "Max-Forwards: 70",
          "Contact: <sip:alias1@host1.example.com>",
          "C%6Fntact: <sip:alias2@host2.example.com>",
          "Contact: <sip:alias3@host3.example.com>",
          "l: 0",
          "",
          "",
        ),
      ),
    );
    assert.equal(m.method, "RE%47IST%45R", "not REGISTER: method names are not unescaped");
    assert.equal(m.headers.to.name, "%Z%45");
    assert.equal(m.headers.via[0]?.params.branch, "z9hG4bK209%fzsnel234");
    assert.deepEqual(
      m.headers.contact?.map((c) => c.uri),
      ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"],
    );
    assert.equal(
      m.headers["c%6fntact"],
      "<sip:alias2@host2.example.com>",
      "an unknown header, not Contact",
    );
  });

  it("torture - 3.1.1.6 lwsdisp: no LWS between display name and <", () => {
    const m = request(
      parseMessage(
        msg(
          "OPTIONS sip:user@example.com SIP/2.0",
          "To: sip:user@example.com",
          "From: caller<sip:caller@example.com>;tag=323",
          "Max-Forwards: 70",
          "Call-ID: lwsdisp.1234abcd@funky.example.com",
          "CSeq: 60 OPTIONS",
          "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw",
          "l: 0",
          "",
          "",
        ),
      ),
    );
    assert.deepEqual(m.headers.from, {
      name: "caller",
      uri: "sip:caller@example.com",
      params: { tag: "323" },
    });
  });

  it("torture - 3.1.1.7 longreq: long values in header fields", () => {
    const long = (word: string, times: number) => word.repeat(times);
    const vias = [
      "Via: SIP/2.0/TCP sip33.example.com",
      "v: SIP/2.0/TCP sip32.example.com",
      "V: SIP/2.0/TCP sip31.example.com",
      "Via: SIP/2.0/TCP sip30.example.com",
      "ViA: SIP/2.0/TCP sip29.example.com",
      "VIa: SIP/2.0/TCP sip28.example.com",
      "VIA: SIP/2.0/TCP sip27.example.com",
      "via: SIP/2.0/TCP sip26.example.com",
      "viA: SIP/2.0/TCP sip25.example.com",
      "vIa: SIP/2.0/TCP sip24.example.com",
      "vIA: SIP/2.0/TCP sip23.example.com",
      "V :  SIP/2.0/TCP sip22.example.com",
      "v :  SIP/2.0/TCP sip21.example.com",
      "V  : SIP/2.0/TCP sip20.example.com",
      "v  : SIP/2.0/TCP sip19.example.com",
      "Via : SIP/2.0/TCP sip18.example.com",
      "Via  : SIP/2.0/TCP sip17.example.com",
      ...Array.from({ length: 16 }, (_, i) => `Via: SIP/2.0/TCP sip${16 - i}.example.com`),
      `Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very${long("long", 50)}branchvalue`,
    ];
    const caller = long("amazinglylongcallername", 5);
    const m = request(
      parseMessage(
        msg(
          "INVITE sip:user@example.com SIP/2.0",
          `To: "I have a user name of ${long("extreme", 10)} proportion"<sip:user@example.com:6000;unknownparam1=very${long("long", 20)}value;longparam${long("name", 25)}=shortvalue;very${long("long", 25)}ParameterNameWithNoValue>`,
          `F: sip:${caller}@example.net;tag=${long("1298298298298298298", 8)}2424;unknownheaderparam${long("name", 20)}=unknowheaderparam${long("value", 15)};unknownValueless${long("paramname", 10)}`,
          `Call-ID: longreq.one${long("really", 20)}longcallid`,
          "CSeq: 3882340 INVITE",
          `Unknown-${long("Long", 20)}-Name: unknown-${long("long", 20)}-value; unknown-${long("long", 20)}-parameter-name = unknown-${long("long", 20)}-parameter-value`,
          ...vias,
          "Max-Forwards: 70",
          `Contact: <sip:${caller}@host5.example.net>`,
          "Content-Type: application/sdp",
          "l: 150",
          "",
          ...sdp("192.0.2.1", "192.0.2.1"),
        ),
      ),
    );
    assert.equal(m.headers.via.length, 34);
    assert.deepEqual(
      m.headers.via.slice(0, 3).map((via) => via.host),
      ["sip33.example.com", "sip32.example.com", "sip31.example.com"],
    );
    assert.equal(m.headers.via[33]?.params.received, "192.0.2.5");
    assert.equal(parseUri(m.headers.to.uri)?.port, 6000);
    assert.equal(m.headers.to.name, `I have a user name of ${long("extreme", 10)} proportion`);
    assert.equal(m.headers.from.params[`unknownvalueless${long("paramname", 10)}`], null);
    assert.equal(m.body.length, 150);
  });

  it("torture - 3.1.1.8 dblreq: extra trailing octets in a UDP datagram are ignored", () => {
    const m = request(
      parseMessage(
        msg(
          "REGISTER sip:example.com SIP/2.0",
          "To: sip:j.user@example.com",
          "From: sip:j.user@example.com;tag=43251j3j324",
          "Max-Forwards: 8",
          "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412",
          "Contact: sip:j.user@host.example.com",
          "CSeq: 8 REGISTER",
          "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492",
          "Content-Length: 0",
          "",
          "INVITE sip:joe@example.com SIP/2.0",
          "t: sip:joe@example.com",
          "From: sip:caller@example.net;tag=141334",
          "Max-Forwards: 8",
          "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15",
          "CSeq: 8 INVITE",
          "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234",
          "Content-Type: application/sdp",
          "Content-Length: 150",
          "",
          ...sdp("192.0.2.15", "192.0.2.15"),
        ),
      ),
    );
    assert.equal(m.method, "REGISTER");
    assert.equal(m.headers["call-id"], "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
    assert.equal(m.body.length, 0);
  });

  it("torture - 3.1.1.9 semiuri: semicolon-separated parameters in the URI user part", () => {
    const m = request(
      parseMessage(
        msg(
          "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
          "To: sip:j_user@example.com",
          "From: sip:caller@example.org;tag=33242",
          "Max-Forwards: 3",
          "Call-ID: semiuri.0ha0isndaksdj",
          "CSeq: 8 OPTIONS",
          "Accept: application/sdp, application/pkcs7-mime,",
          "        multipart/mixed, multipart/signed,",
          "        message/sip, message/sipfrag",
          "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw",
          "l: 0",
          "",
          "",
        ),
      ),
    );
    const uri = parseUri(m.uri);
    assert.equal(uri?.user, "user;par=u%40example.net");
    assert.equal(uri?.host, "example.com");
    assert.deepEqual(uri?.params, {});
    assert.equal(
      m.headers.accept,
      "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag",
    );
  });

  it("torture - 3.1.1.10 transports: varied and unknown transport types", () => {
    const m = request(
      parseMessage(
        msg(
          "OPTIONS sip:user@example.com SIP/2.0",
          "To: sip:user@example.com",
          "From: <sip:caller@example.com>;tag=323",
          "Max-Forwards: 70",
          "Call-ID:  transports.kijh4akdnaqjkwendsasfdj",
          "Accept: application/sdp",
          "CSeq: 60 OPTIONS",
          "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
          "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
          "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj",
          "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
          "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee",
          "l: 0",
          "",
          "",
        ),
      ),
    );
    assert.deepEqual(
      m.headers.via.map((via) => via.protocol),
      ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"],
    );
    assert.equal(m.headers["call-id"], "transports.kijh4akdnaqjkwendsasfdj");
  });

  it("torture - 3.1.1.11 mpart01: a multipart MIME body with binary content survives byte-exact", () => {
    const der = Buffer.from(
      "3082015206092a864886f70d010702a08201433082013f0201013109300706052b0e0302" +
        "1a300b06092a864886f70d010701318201203082011c020101307c3070310b3009060355" +
        "040613025553311330110603550408130a43616c69666f726e69613111300f0603550407" +
        "130853616e204a6f7365310e300c060355040a1305736970697431293027060355040b13" +
        "205369706974205465737420436572746966696361746520417574686f72697479020801" +
        "95007102330113300706052b0e03021a300d06092a864886f70d01010105000481808ef4" +
        "66f948f0522dd2e5978e9d95aae9f2fe15a06659716292e8da2aa8d8350a68ceffae3cbd" +
        "2bff1675ddd5648e593dd64728f26220f7e941749e330d9a15edabdb93d10c42102e7b72" +
        "89d29cc0c9ae2efbc7c0cff9172f3b027e4fc027e1546de4b6aa3abb3e66cccb5dd6c64b" +
        "8383149cb8e6ff182d944fe57b65bc99d005",
      "hex",
    );
    assert.equal(der.length, 342);
    const body = Buffer.concat([
      msg(
        "--7a9cbec02ceef655",
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: binary",
        "",
        "Hello",
        "--7a9cbec02ceef655",
        "Content-Type: application/octet-stream",
        "Content-Transfer-Encoding: binary",
        "",
        "",
      ),
      der,
      msg("", "--7a9cbec02ceef655--", ""),
    ]);
    assert.equal(body.length, 553);
    const head = msg(
      "MESSAGE sip:kumiko@example.org SIP/2.0",
      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport",
      "Max-Forwards: 70",
      "Route: <sip:127.0.0.1:5080>",
      "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=",
      "Contact: <sip:fluffy@127.0.0.1:5070>",
      "To: <sip:kumiko@example.org>",
      "From: <sip:fluffy@example.com>;tag=2fb0dcc9",
      "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
      "CSeq: 1 MESSAGE",
      "Content-Transfer-Encoding: binary",
      "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655",
      "Date: Sat, 15 Oct 2005 04:44:56 GMT",
      "User-Agent: SIPimp.org/0.2.5 (curses)",
      "Content-Length: 553",
      "",
      "",
    );
    const m = request(parseMessage(Buffer.concat([head, body])));
    assert.deepEqual(m.body, body);
    assert.deepEqual(m.headers.via[0]?.params, {
      branch: "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-",
      rport: null,
    });
    assert.equal(m.headers.via[0]?.port, 5070);
    assert.equal(m.headers.date, "Sat, 15 Oct 2005 04:44:56 GMT");
  });

  it("torture - 3.1.1.12 unreason: an unusual (UTF-8) reason phrase", () => {
    const m = response(
      parseMessage(
        msg(
          "SIP/2.0 200 = 2**3 * 5**2 \xD0\xBD\xD0\xBE \xD1\x81\xD1\x82\xD0\xBE \xD0\xB4\xD0\xB5\xD0\xB2\xD1\x8F\xD0\xBD\xD0\xBE\xD1\x81\xD1\x82\xD0\xBE \xD0\xB4\xD0\xB5\xD0\xB2\xD1\x8F\xD1\x82\xD1\x8C - \xD0\xBF\xD1\x80\xD0\xBE\xD1\x81\xD1\x82\xD0\xBE\xD0\xB5",
          "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
          "Call-ID: unreason.1234ksdfak3j2erwedfsASdf",
          "CSeq: 35 INVITE",
          "From: sip:user@example.com;tag=11141343",
          "To: sip:user@example.edu;tag=2229",
          "Content-Length: 154",
          "Content-Type: application/sdp",
          "Contact: <sip:user@host198.example.com>",
          "",
          ...sdp("192.0.2.198", "192.0.2.198"),
        ),
      ),
    );
    assert.equal(m.status, 200);
    assert.equal(utf8(m.reason), "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert.equal(m.body.length, 154);
  });

  it("torture - 3.1.1.13 noreason: an empty reason phrase", () => {
    const m = response(
      parseMessage(
        msg(
          "SIP/2.0 100 ",
          "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
          "Call-ID: noreason.asndj203insdf99223ndf",
          "CSeq: 35 INVITE",
          "From: <sip:user@example.com>;tag=39ansfi3",
          "To: <sip:user@example.edu>;tag=902jndnke3",
          "Content-Length: 0",
          "Contact: <sip:user@host105.example.com>",
          "",
          "",
        ),
      ),
    );
    assert.equal(m.status, 100);
    assert.equal(m.reason, "");
  });
});

describe("RFC 4475 §3.1.2 invalid messages", () => {
  it("torture - 3.1.2.1 badinv01: extraneous header field separators", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=134161461246",
        "Max-Forwards: 7",
        "Call-ID: badinv01.0ha0isndaksdjasdf3234nas",
        "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
        'Contact: "Joe" <sip:joe@example.org>;;;;',
        "Content-Length: 152",
        "Content-Type: application/sdp",
        "",
        ...sdp("192.0.2.15", "192.0.2.15"),
      ),
      "Malformed Via header",
      false,
    );
  });

  it("torture - 3.1.2.2 clerr: Content-Length larger than the datagram body", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        "Max-Forwards: 80",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=93942939o2",
        "Contact: <sip:caller@hungry.example.net>",
        "Call-ID: clerr.0ha0isndaksdjweiafasdk3",
        "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523",
        "Content-Type: application/sdp",
        "Content-Length: 9999",
        "",
        ...sdp("192.0.2.155", "192.0.2.155"),
      ),
      "Content-Length larger than body",
      true,
    );
  });

  it("torture - 3.1.2.3 ncl: negative Content-Length", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        "Max-Forwards: 254",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=32394234",
        "Call-ID: ncl.0ha0isndaksdj2193423r542w35",
        "CSeq: 0 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw",
        "Contact: <sip:caller@example53.example.net>",
        "Content-Type: application/sdp",
        "Content-Length: -999",
        "",
        ...sdp("192.0.2.53", "192.0.2.53"),
      ),
      "Malformed Content-Length header",
      true,
    );
  });

  it("torture - 3.1.2.4 scalar02: overlarge CSeq (no partial: a CSeq that cannot be echoed means drop)", () => {
    rejects(
      msg(
        "REGISTER sip:example.com SIP/2.0",
        "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
        "To: <sip:user@example.com>",
        "From: <sip:user@example.com>;tag=239232jh3",
        "CSeq: 36893488147419103232 REGISTER",
        "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
        "Max-Forwards: 300",
        `Expires: 1${"0".repeat(100)}`,
        "Contact: <sip:user@host129.example.com>",
        "  ;expires=280297596632815",
        "Content-Length: 0",
        "",
        "",
      ),
      "Malformed CSeq header",
      false,
    );
  });

  it("torture - 3.1.2.5 scalarlg: a response with overlarge scalars is refused (and so dropped)", () => {
    rejects(
      msg(
        "SIP/2.0 503 Service Unavailable",
        "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129",
        "To: <sip:user@example.com>",
        "From: <sip:other@example.net>;tag=2easdjfejw",
        "CSeq: 9292394834772304023312 OPTIONS",
        "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r",
        "Retry-After: 949302838503028349304023988",
        'Warning: 1812 overture "In Progress"',
        "Content-Length: 0",
        "",
        "",
      ),
      "Malformed CSeq header",
      false,
    );
  });

  it("torture - 3.1.2.6 quotbal: unterminated quoted string in a display name", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        'To: "Mr. J. User <sip:j.user@example.com>',
        "From: sip:caller@example.net;tag=93334",
        "Max-Forwards: 10",
        "Call-ID: quotbal.aksdj",
        "Contact: <sip:caller@host59.example.net>",
        "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234",
        "Content-Type: application/sdp",
        "Content-Length: 152",
        "",
        ...sdp("192.0.2.15", "192.0.2.15"),
      ),
      "Malformed To header",
      false,
    );
  });

  it("torture - 3.1.2.7 ltgtruri: <> enclosing the Request-URI", () => {
    const error = rejects(
      msg(
        "INVITE <sip:user@example.com> SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=39291",
        "Max-Forwards: 23",
        "Call-ID: ltgtruri.1@192.0.2.5",
        "CSeq: 1 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.5",
        "Contact: <sip:caller@host5.example.net>",
        "Content-Type: application/sdp",
        "Content-Length: 159",
        "",
        ...sdp("192.0.2.5", "192.0.2.5", "t=3149328700 0"),
      ),
      "Malformed Request-URI",
      true,
    );
    assert.equal(error.partial?.uri, "<sip:user@example.com>");
  });

  it("torture - 3.1.2.8 lwsruri: embedded LWS in the Request-URI", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com; lr SIP/2.0",
        "To: sip:user@example.com;tag=3xfe-9921883-z9f",
        "From: sip:caller@example.net;tag=231413434",
        "Max-Forwards: 5",
        "Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423",
        "CSeq: 2130706432 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395",
        "Contact: <sip:caller@host1.example.net>",
        "Content-Type: application/sdp",
        "Content-Length: 159",
        "",
        ...sdp("192.0.2.1", "192.0.2.1", "t=3149328700 0"),
      ),
      "Malformed Request-Line",
      true,
    );
  });

  it("torture - 3.1.2.9 lwsstart: multiple SP in the Request-Line (RFC allows either; we answer 400)", () => {
    const error = rejects(
      msg(
        "INVITE  sip:user@example.com  SIP/2.0",
        "Max-Forwards: 8",
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=8814",
        "Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com",
        "CSeq: 1893884 INVITE",
        "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923",
        "Contact: <sip:caller@host1.example.net>",
        "Content-Type: application/sdp",
        "Content-Length: 150",
        "",
        ...sdp("192.0.2.1", "192.0.2.1"),
      ),
      "Malformed Request-Line",
      true,
    );
    assert.equal(error.partial?.uri, "sip:user@example.com");
  });

  it("torture - 3.1.2.10 trws: SP at the end of the Request-Line (RFC allows either; we answer 400)", () => {
    rejects(
      msg(
        "OPTIONS sip:remote-target@example.com SIP/2.0  ",
        "Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093",
        "To: <sip:remote-target@example.com>",
        "From: <sip:local-resource@example.com>;tag=329429089",
        "Call-ID: trws.oicu34958239neffasdhr2345r",
        "Accept: application/sdp",
        "CSeq: 238923 OPTIONS",
        "Max-Forwards: 70",
        "Content-Length: 0",
        "",
        "",
      ),
      "Malformed Request-Line",
      true,
    );
  });

  it("torture - 3.1.2.11 escruri: escaped headers in the Request-URI (rejection is acceptable)", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=341518",
        "Max-Forwards: 7",
        "Contact: <sip:caller@host39923.example.net>",
        "Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5",
        "CSeq: 149209342 INVITE",
        "Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw",
        "Content-Type: application/sdp",
        "Content-Length: 150",
        "",
        ...sdp("192.0.2.1", "192.0.2.1"),
      ),
      "Malformed Request-URI",
      true,
    );
  });

  it("torture - 3.1.2.12 baddate: a non-GMT Date is accepted, kept raw (we never use Date)", () => {
    const m = parseMessage(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=2234923",
        "Max-Forwards: 70",
        "Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234",
        "CSeq: 1392934 INVITE",
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
        "Date: Fri, 01 Jan 2010 16:00:00 EST",
        "Contact: <sip:caller@host5.example.net>",
        "Content-Type: application/sdp",
        "Content-Length: 150",
        "",
        ...sdp("192.0.2.5", "192.0.2.5"),
      ),
    );
    assert.equal(m.headers.date, "Fri, 01 Jan 2010 16:00:00 EST");
  });

  it("torture - 3.1.2.13 regbadct: a URI with ? outside <> (rejection is reasonable)", () => {
    rejects(
      msg(
        "REGISTER sip:example.com SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:user@example.com;tag=998332",
        "Max-Forwards: 70",
        "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1",
        "CSeq: 1 REGISTER",
        "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw",
        "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "l: 0",
        "",
        "",
      ),
      "Malformed Contact header",
      true,
    );
  });

  it("torture - 3.1.2.14 badaspec: spaces within an addr-spec", () => {
    rejects(
      msg(
        "OPTIONS sip:user@example.org SIP/2.0",
        "Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234",
        "Max-Forwards: 70",
        'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423',
        'To: "Watson, Thomas" < sip:t.watson@example.org >',
        "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
        "Accept: application/sdp",
        "CSeq: 3923239 OPTIONS",
        "l: 0",
        "",
        "",
      ),
      "Malformed To header",
      false,
    );
  });

  it("torture - 3.1.2.15 baddn: non-token characters in an unquoted display name", () => {
    rejects(
      msg(
        "OPTIONS sip:t.watson@example.org SIP/2.0",
        "Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw",
        "Max-Forwards:      70",
        "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        "To:      Watson, Thomas <sip:t.watson@example.org>",
        "Call-ID: baddn.31415@c.example.com",
        "Accept: application/sdp",
        "CSeq:    3923239 OPTIONS",
        "l: 0",
        "",
        "",
      ),
      "Malformed From header",
      false,
    );
  });

  it("torture - 3.1.2.16 badvers: an unknown SIP version parses; the UAS answers 505 from `version`", () => {
    const m = request(
      parseMessage(
        msg(
          "OPTIONS sip:t.watson@example.org SIP/7.0",
          "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",
          "Max-Forwards:     70",
          "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe",
          "To:      T. Watson <sip:t.watson@example.org>",
          "Call-ID: badvers.31417@c.example.com",
          "CSeq:    1 OPTIONS",
          "l: 0",
          "",
          "",
        ),
      ),
    );
    assert.equal(m.version, "7.0");
    assert.equal(m.headers.via[0]?.version, "7.0");
    assert.equal(m.headers.from.name, "A. Bell");
  });

  it("torture - 3.1.2.17 mismatch01: start line and CSeq method mismatch", () => {
    rejects(
      msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=34525",
        "Max-Forwards: 6",
        "Call-ID: mismatch01.dj0234sxdfl3",
        "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
        "l: 0",
        "",
        "",
      ),
      "CSeq method does not match Request-Line",
      true,
    );
  });

  it("torture - 3.1.2.18 mismatch02: unknown method with CSeq mismatch (400 is acceptable)", () => {
    rejects(
      msg(
        "NEWMETHOD sip:user@example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=34525",
        "Max-Forwards: 6",
        "Call-ID: mismatch02.dj0234sxdfl3",
        "CSeq: 8 INVITE",
        "Contact: <sip:caller@host.example.net>",
        "Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw",
        "Content-Type: application/sdp",
        "l: 138",
        "",
        "v=0",
        "o=mhandley 29739 7272939 IN IP4 192.0.2.1",
        "c=IN IP4 192.0.2.1",
        "m=audio 49217 RTP/AVP 0 12",
        "m=video 3227 RTP/AVP 31",
        "a=rtpmap:31 LPC",
        "",
      ),
      "CSeq method does not match Request-Line",
      true,
    );
  });

  it("torture - 3.1.2.19 bigcode: an overlarge response code", () => {
    rejects(
      msg(
        "SIP/2.0 4294967301 better not break the receiver",
        "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
        "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i",
        "CSeq: 353494 INVITE",
        "From: <sip:user@example.com>;tag=39ansfi3",
        "To: <sip:user@example.edu>;tag=902jndnke3",
        "Content-Length: 0",
        "Contact: <sip:user@host105.example.com>",
        "",
        "",
      ),
      "Malformed Status-Line",
      false,
    );
  });
});

describe("RFC 4475 §3.2-3.3 messages a UAS meets", () => {
  it("torture - 3.2.1 badbranch: a bare magic cookie branch still parses (transaction layer's call)", () => {
    const m = parseMessage(
      msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:caller@example.org;tag=33242",
        "Max-Forwards: 3",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK",
        "Accept: application/sdp",
        "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n",
        "CSeq: 8 OPTIONS",
        "l: 0",
        "",
        "",
      ),
    );
    assert.equal(m.headers.via[0]?.params.branch, "z9hG4bK");
  });

  it("torture - 3.3.1 insuf: missing required header fields", () => {
    rejects(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        "CSeq: 193942 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf",
        "Content-Type: application/sdp",
        "l: 152",
        "",
        ...sdp("192.0.2.95", "192.0.2.95"),
      ),
      "Missing From",
      false,
    );
  });

  it("torture - 3.3.2/3.3.3 unkscm, novelsc: unknown Request-URI schemes parse (the UAS answers 416)", () => {
    for (const uri of [
      "nobodyKnowsThisScheme:totallyopaquecontent",
      "soap.beep://192.0.2.103:3002",
    ]) {
      const m = request(
        parseMessage(
          msg(
            `OPTIONS ${uri} SIP/2.0`,
            "To: sip:user@example.com",
            "From: sip:caller@example.net;tag=384",
            "Max-Forwards: 3",
            "Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34",
            "CSeq: 3923423 OPTIONS",
            "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234",
            "Content-Length: 0",
            "",
            "",
          ),
        ),
      );
      assert.equal(m.uri, uri);
      assert.equal(parseUri(m.uri), undefined);
    }
  });

  it("torture - 3.3.4 unksm2: unknown URI schemes in header fields parse", () => {
    const m = parseMessage(
      msg(
        "REGISTER sip:example.com SIP/2.0",
        "To: isbn:2983792873",
        "From: <http://www.example.com>;tag=3234233",
        "Call-ID: unksm2.daksdj@hyphenated-host.example.com",
        "CSeq: 234902 REGISTER",
        "Max-Forwards: 70",
        "Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw",
        "Contact: <name:John_Smith>",
        "l: 0",
        "",
        "",
      ),
    );
    assert.equal(m.headers.to.uri, "isbn:2983792873");
    assert.equal(m.headers.from.uri, "http://www.example.com");
    assert.equal(m.headers.contact?.[0]?.uri, "name:John_Smith");
  });

  it("torture - 3.3.5/3.3.6/3.3.7 bext01, invut, regaut01: application-level problems parse", () => {
    const bext = parseMessage(
      msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:j_user@example.com",
        "From: sip:caller@example.net;tag=242etr",
        "Max-Forwards: 6",
        "Call-ID: bext01.0ha0isndaksdj",
        "Require: nothingSupportsThis, nothingSupportsThisEither",
        "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis",
        "CSeq: 8 OPTIONS",
        "Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw",
        "Content-Length: 0",
        "",
        "",
      ),
    );
    assert.equal(bext.headers.require, "nothingSupportsThis, nothingSupportsThisEither");
    const invut = parseMessage(
      msg(
        "INVITE sip:user@example.com SIP/2.0",
        "Contact: <sip:caller@host5.example.net>",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=8392034",
        "Max-Forwards: 70",
        "Call-ID: invut.0ha0isndaksdjadsfij34n23d",
        "CSeq: 235448 INVITE",
        "Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw",
        "Content-Type: application/unknownformat",
        "Content-Length: 40",
        "",
        "<audio>",
        ' <pcmu port="443"/>',
        "</audio>",
        "",
      ),
    );
    assert.equal(invut.body.toString("latin1"), '<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n');
    const regaut = parseMessage(
      msg(
        "REGISTER sip:example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:j.user@example.com;tag=87321hj23128",
        "Max-Forwards: 8",
        "Call-ID: regaut01.0ha0isndaksdj",
        "CSeq: 9338 REGISTER",
        "Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw",
        "Authorization: NoOneKnowsThisScheme opaque-data=here",
        "Content-Length:0",
        "",
        "",
      ),
    );
    assert.equal(regaut.headers.authorization, "NoOneKnowsThisScheme opaque-data=here");
  });

  it("torture - 3.3.8 multi01: multiple values in single-value required fields", () => {
    rejects(
      msg(
        "INVITE sip:user@company.com SIP/2.0",
        "Contact: <sip:caller@host25.example.net>",
        "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
        "Max-Forwards: 70",
        "CSeq: 5 INVITE",
        "Call-ID: multi01.98asdh@192.0.2.1",
        "CSeq: 59 INVITE",
        "Call-ID: multi01.98asdh@192.0.2.2",
        "From: sip:caller@example.com;tag=3413415",
        "To: sip:user@example.com",
        "To: sip:other@example.net",
        "From: sip:caller@example.net;tag=2923420123",
        "Content-Type: application/sdp",
        "l: 154",
        "Contact: <sip:caller@host36.example.net>",
        "Max-Forwards: 5",
        "",
        ...sdp("192.0.2.25", "192.0.2.25"),
      ),
      "Duplicate CSeq header",
      true,
    );
  });

  it("torture - 3.3.9 mcl01: multiple Content-Length values", () => {
    rejects(
      msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423",
        "To: sip:user@example.com",
        "From: sip:other@example.net;tag=3923942",
        "Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf",
        "CSeq: 15932 OPTIONS",
        "Content-Length: 13",
        "Max-Forwards: 60",
        "Content-Length: 5",
        "Content-Type: text/plain",
        "",
        "There's no way to know how many octets are supposed to be here.",
        "",
      ),
      "Duplicate Content-Length header",
      true,
    );
  });

  it("torture - 3.3.10/3.3.11/3.3.12 bcast, zeromf, cparam01: semantic oddities parse", () => {
    const bcast = parseMessage(
      msg(
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
        "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23",
        "Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf",
        "CSeq: 35 INVITE",
        "From: sip:user@example.com;tag=11141343",
        "To: sip:user@example.edu;tag=2229",
        "Content-Length: 154",
        "Content-Type: application/sdp",
        "Contact: <sip:user@host28.example.com>",
        "",
        ...sdp("192.0.2.198", "192.0.2.198"),
      ),
    );
    assert.equal(bcast.headers.via[1]?.host, "255.255.255.255");
    const zeromf = parseMessage(
      msg(
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=3ghsd41",
        "Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas",
        "CSeq: 39234321 OPTIONS",
        "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i",
        "Max-Forwards: 0",
        "Content-Length: 0",
        "",
        "",
      ),
    );
    assert.equal(zeromf.headers["max-forwards"], "0");
    const cparam = parseMessage(
      msg(
        "REGISTER sip:example.com SIP/2.0",
        "Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw",
        "Max-Forwards: 70",
        "From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe",
        "To: sip:watson@example.com",
        "Call-ID: cparam01.70710@saturn.example.com",
        "CSeq: 2 REGISTER",
        "Contact: sip:+19725552222@gw1.example.net;unknownparam",
        "l: 0",
        "",
        "",
      ),
    );
    assert.deepEqual(cparam.headers.contact, [
      { uri: "sip:+19725552222@gw1.example.net", params: { unknownparam: null } },
    ]);
  });
});

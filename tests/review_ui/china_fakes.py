"""Local stand-ins for the Alibaba Cloud SMS, Tencent Cloud SMS, DingTalk, WeCom and case-system
APIs. Each checks requests the way its documentation says the real one does, written from that
documentation and not from review_ui's client code (nothing here imports review_ui):

- Alibaba RPC signature v1 (help.aliyun.com document 25490, "签名机制"): sort the parameters,
  encode names and values with the java URLEncoder recipe (then + -> %20, * -> %2A, %7E -> ~),
  StringToSign = METHOD & %2F & encode(query), Base64(HMAC-SHA1(secret + "&", StringToSign)).
- Tencent TC3-HMAC-SHA256 ("签名方法 v3"): CanonicalRequest of method, URI, query, the signed
  headers and SHA-256 of the body; StringToSign with the credential scope date/service/tc3_request;
  the key derived HMAC("TC3" + SecretKey, date) -> service -> "tc3_request".
- DingTalk custom robot 加签: sign = urlencode(Base64(HMAC-SHA256(secret, timestamp + "\\n" + secret)))
  with timestamp in milliseconds, at most an hour off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, Any]]


@dataclass
class FakeApi:
    """An HTTP server whose `answer(seen)` decides each reply; every request is kept in `seen`."""

    answer: Callable[[Seen], Reply]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


@contextmanager
def serving(api: FakeApi) -> Iterator[FakeApi]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            split = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                split.path,
                dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            seen.headers["raw-query"] = split.query
            api.seen.append(seen)
            status, body = api.answer(seen)
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- Alibaba Cloud SMS


def aliyun_encode(text: str) -> str:
    """The documentation's recipe: the form encoder, then + -> %20, * -> %2A, %7E -> ~."""
    return urllib.parse.quote_plus(text, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def aliyun_signature(secret: str, method: str, params: dict[str, str]) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    query = "&".join(f"{aliyun_encode(k)}={aliyun_encode(v)}" for k, v in pairs)
    string_to_sign = f"{method}&{aliyun_encode('/')}&{aliyun_encode(query)}"
    return base64.b64encode(
        hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()


@dataclass
class AliyunSms:
    """dysmsapi 2017-05-25. `status` is what QuerySendDetails reports (1 waiting, 2 failed, 3 ok)."""

    key_id: str
    secret: str
    status: int = 3
    sent: list[dict[str, str]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    refuse_with: str | None = None  # e.g. isv.BUSINESS_LIMIT_CONTROL

    def __call__(self, seen: Seen) -> Reply:
        params = dict(urllib.parse.parse_qsl(seen.body.decode(), keep_blank_values=True))
        problem = self.check(params)
        if problem:
            return 400, {"Code": problem[0], "Message": problem[1], "RequestId": "fake"}
        if params["Action"] == "SendSms":
            if self.refuse_with:
                return 200, {"Code": self.refuse_with, "Message": "refused by the fake", "RequestId": "fake"}
            self.sent.append(params)
            return 200, {
                "Code": "OK",
                "Message": "OK",
                "BizId": f"9{len(self.sent):05d}^0",
                "RequestId": "fake",
            }
        if params["Action"] == "QuerySendDetails":
            matching = [p for p in self.sent if f"9{self.sent.index(p) + 1:05d}^0" == params.get("BizId")]
            if not matching:
                return 200, {"Code": "OK", "TotalCount": 0, "SmsSendDetailDTOs": {"SmsSendDetailDTO": []}}
            detail = {
                "PhoneNum": matching[0]["PhoneNumbers"],
                "SendStatus": self.status,
                "ErrCode": {1: "", 2: "MK:0001", 3: "DELIVERED"}[self.status],
                "ReceiveDate": "2026-05-01 10:00:05" if self.status == 3 else "",
                "OutId": matching[0].get("OutId", ""),
            }
            return 200, {"Code": "OK", "TotalCount": 1, "SmsSendDetailDTOs": {"SmsSendDetailDTO": [detail]}}
        return 404, {"Code": "InvalidAction.NotFound", "Message": params["Action"]}

    def check(self, params: dict[str, str]) -> tuple[str, str] | None:
        for key in (
            "AccessKeyId",
            "Action",
            "Format",
            "SignatureMethod",
            "SignatureNonce",
            "SignatureVersion",
            "Timestamp",
            "Version",
            "Signature",
        ):
            if key not in params:
                return "MissingParameter", key
        if params["AccessKeyId"] != self.key_id:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        if (params["SignatureMethod"], params["SignatureVersion"], params["Version"]) != (
            "HMAC-SHA1",
            "1.0",
            "2017-05-25",
        ):
            return "InvalidParameter", "signature method / version"
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs(stamp.timestamp() - time.time()) > 15 * 60:  # the documented validity
            return "InvalidTimeStamp.Expired", params["Timestamp"]
        if params["SignatureNonce"] in self.nonces:
            return "SignatureNonceUsed", params["SignatureNonce"]
        self.nonces.add(params["SignatureNonce"])
        if params["Signature"] != aliyun_signature(self.secret, "POST", params):
            return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        return None


# ---------------------------------------------------------------- Tencent Cloud SMS


def tc3_signature(
    secret_key: str,
    method: str,
    headers: dict[str, str],
    signed: list[str],
    body: bytes,
    timestamp: int,
    service: str,
) -> tuple[str, str]:
    """(CanonicalRequest, Signature) for a request to "/" without a query string."""
    # "header names and values in lower case, without leading and trailing spaces"
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed)
    canonical = "\n".join(
        [method, "/", "", canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )

    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return canonical, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class TencentSms:
    """sms 2021-01-11. `report` is what PullSmsSendStatusByPhoneNumber gives: SUCCESS, FAIL or None."""

    secret_id: str
    secret_key: str
    report: str | None = "SUCCESS"
    sent: list[dict[str, Any]] = field(default_factory=list)
    number_code: str = "Ok"  # the per-number Code in SendStatusSet

    def __call__(self, seen: Seen) -> Reply:
        problem = self.check(seen)
        if problem:
            return 200, {
                "Response": {"Error": {"Code": problem[0], "Message": problem[1]}, "RequestId": "fake"}
            }
        action = seen.headers["x-tc-action"]
        request = seen.json()
        if action == "SendSms":
            self.sent.append(request)
            statuses = [
                {
                    "SerialNo": f"2028:{len(self.sent)}",
                    "PhoneNumber": number,
                    "Fee": 1,
                    "SessionContext": request.get("SessionContext", ""),
                    "Code": self.number_code,
                    "Message": "send success" if self.number_code == "Ok" else "fake refusal",
                    "IsoCode": "CN",
                }
                for number in request["PhoneNumberSet"]
            ]
            return 200, {"Response": {"SendStatusSet": statuses, "RequestId": "fake"}}
        if action == "PullSmsSendStatusByPhoneNumber":
            reports = []
            if self.report is not None:
                for index, sent in enumerate(self.sent, start=1):
                    if request["PhoneNumber"] in sent["PhoneNumberSet"]:
                        reports.append(
                            {
                                "UserReceiveTime": "2026-05-01 10:00:05",
                                "CountryCode": "86",
                                "SubscriberNumber": request["PhoneNumber"][3:],
                                "PhoneNumber": request["PhoneNumber"],
                                "SerialNo": f"2028:{index}",
                                "ReportStatus": self.report,
                                "Description": "用户短信送达成功" if self.report == "SUCCESS" else "关机",
                                "SessionContext": sent.get("SessionContext", ""),
                            }
                        )
            return 200, {"Response": {"PullSmsSendStatusSet": reports, "RequestId": "fake"}}
        return 200, {"Response": {"Error": {"Code": "InvalidAction", "Message": action}, "RequestId": "fake"}}

    def check(self, seen: Seen) -> tuple[str, str] | None:
        authorization = seen.headers.get("authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.SignatureFailure", "algorithm"
        parts = dict(item.strip().split("=", 1) for item in rest.split(","))
        secret_id, date, service, terminator = parts["Credential"].split("/")
        timestamp = int(seen.headers["x-tc-timestamp"])
        if secret_id != self.secret_id:
            return "AuthFailure.SecretIdNotFound", secret_id
        if abs(timestamp - time.time()) > 300:  # "within five minutes"
            return "AuthFailure.SignatureExpire", str(timestamp)
        if date != datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") or terminator != "tc3_request":
            return "AuthFailure.InvalidAuthorization", "credential scope"
        if seen.headers.get("x-tc-version") != "2021-01-11" or service != "sms":
            return "AuthFailure.InvalidAuthorization", "version / service"
        signed = parts["SignedHeaders"].split(";")
        if "content-type" not in signed or "host" not in signed:
            return "AuthFailure.InvalidAuthorization", "content-type and host must be signed"
        _, expected = tc3_signature(
            self.secret_key, "POST", seen.headers, signed, seen.body, timestamp, service
        )
        if parts["Signature"] != expected:
            return "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
        return None


# ---------------------------------------------------------------- group robots


def dingtalk_doc_sign(secret: str, timestamp: str) -> str:
    """The documentation's Python sample, as printed there."""
    secret_enc = secret.encode("utf-8")
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(secret_enc, string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(hmac_code))


@dataclass
class DingTalkRobot:
    access_token: str
    secret: str
    posts: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/robot/send" or seen.query.get("access_token") != self.access_token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        raw = dict(pair.split("=", 1) for pair in seen.headers["raw-query"].split("&"))
        timestamp = raw.get("timestamp", "0")
        if abs(int(timestamp) / 1000 - time.time()) > 3600:
            return 200, {"errcode": 310000, "errmsg": "sign not match, timestamp too old"}
        # Compared as sent: still URL-encoded, as the documentation's sample produces it.
        if raw.get("sign") != dingtalk_doc_sign(self.secret, timestamp):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        message = seen.json()
        if message.get("msgtype") != "markdown" or not {"title", "text"} <= set(message["markdown"]):
            return 200, {"errcode": 40035, "errmsg": "markdown needs title and text"}
        self.posts.append(message)
        return 200, {"errcode": 0, "errmsg": "ok"}


@dataclass
class WeComRobot:
    key: str
    posts: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/cgi-bin/webhook/send" or seen.query.get("key") != self.key:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        message = seen.json()
        content = message.get("markdown", {}).get("content", "")
        if message.get("msgtype") != "markdown" or not content:
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        if len(content.encode("utf-8")) > 4096:
            return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
        self.posts.append(message)
        return 200, {"errcode": 0, "errmsg": "ok"}


# ---------------------------------------------------------------- the city's case system


@dataclass
class CaseSystem:
    """curbwatch.case/1 intake (docs/reminders.md): one case per external_id, 409 on a repeat."""

    token: str
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0

    def __call__(self, seen: Seen) -> Reply:
        self.posts += 1
        if seen.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthorized"}
        case = seen.json()
        required = {"schema", "external_id", "case_type", "occurred_at", "location", "shop", "evidence_url"}
        if case.get("schema") != "curbwatch.case/1" or not required <= set(case):
            return 422, {"error": f"missing {sorted(required - set(case))}"}
        if seen.headers.get("idempotency-key") != case["external_id"]:
            return 422, {"error": "Idempotency-Key must equal external_id"}
        if case["external_id"] in self.cases:
            return 409, {"case_number": self.cases[case["external_id"]]["case_number"]}
        number = f"GL-2026-{len(self.cases) + 1:06d}"
        self.cases[case["external_id"]] = {"case_number": number, "case": case}
        return 201, {"case_number": number}

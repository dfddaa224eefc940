#!/usr/bin/env bash
# The README's curl walk-through of both flows against a running sandbox service; exits non-zero on any surprise.
# usage: scripts/walkthrough.sh [http://127.0.0.1:8080]
set -euo pipefail
BASE=${1:-http://127.0.0.1:8080}
U="$BASE/demochannel/bindCard?r_c=DEMO"
B='"user_id":"246964109149933","bank_card":"6222022005001212723","open_bank":"ICBC","user_name":"张三","id_number":"110108198802019650","user_mobile":"13420504517","bank_address":"北京市 市辖区","bank_card_type":0,"bind_card_src":1'
SECRET=${SECRET:-demo-secret}   # the sandbox DEMO channel's published secret
# A signed POST: X-Signature = hex HMAC-SHA256(secret, METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nSHA256_HEX(BODY)).
post() {
  local path=${1#"$BASE"} ts nonce hash sig
  ts=$(date +%s)
  nonce=$(openssl rand -hex 16)
  hash=$(printf '%s' "$2" | openssl dgst -sha256 -r | cut -d' ' -f1)
  sig=$(printf 'POST\n%s\n%s\n%s\n%s' "$path" "$ts" "$nonce" "$hash" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
  curl -sS -XPOST "$1" -H 'content-type: application/json' \
    -H "X-Channel: DEMO" -H "X-Timestamp: $ts" -H "X-Nonce: $nonce" -H "X-Signature: $sig" --data-binary "$2"
}
expect() { echo "$2"; grep -q "$1" <<<"$2" || { echo "walkthrough: expected $1" >&2; exit 1; }; }

echo "1. new card, first call: a code is sent (or the card is already bound)"
first=$(post "$U" "{$B}")
expect '"code":200' "$first"
if grep -q SMS_SENT <<<"$first"; then
  echo "2. read the code from the sandbox phone"
  code=$(curl -sS "$BASE/sandbox/sms?mobile=13420504517" | grep -o '"code":"[0-9]\{6\}"' | sed -n '1s/[^0-9]//gp') ||
    { echo "walkthrough: no code on the sandbox phone" >&2; exit 1; }
  echo "code $code"
  echo "3. confirm with the code"
  expect '"status":"BOUND"' "$(post "$U" "{$B,\"verify_code\":\"$code\"}")"
  echo "4. retry of the confirmation: same answer"
  expect '"status":"BOUND"' "$(post "$U" "{$B,\"verify_code\":\"$code\"}")"
fi
echo "5. card list"
expect '622202\*\*\*\*\*\*\*\*\*2723' "$(post "$BASE/demochannel/bankCardList?r_c=DEMO" '{"user_id":"246964109149933"}')"
echo "6. existing card: bound without SMS"
expect '"status":"BOUND"' "$(post "$U" '{"user_id":"246964109149933","bank_card":"6222022005001212723","open_bank":"ICBC","bind_card_src":2}')"
echo "walkthrough: ok"

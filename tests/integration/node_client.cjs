// One chat completion with the official Node `openai` package, the way a Node project would
// reach the gateway. TK_WAY picks the way:
//   base   - OPENAI_BASE_URL points at a reverse listener (no proxy, no CA)
//   agent  - HTTPS_PROXY through undici's EnvHttpProxyAgent (any Node >= 20.18)
//   env    - HTTPS_PROXY honoured by Node's own fetch (NODE_USE_ENV_PROXY=1, Node >= 22.21 / 24)
// The mitmproxy CA comes from NODE_EXTRA_CA_CERTS; the packages from NODE_PATH. Prints the
// usage the client got as JSON.
const OpenAI = require("openai");

async function main() {
  if (process.env.TK_WAY === "agent") {
    const { EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");
    setGlobalDispatcher(new EnvHttpProxyAgent());
  }
  const client = new OpenAI({ maxRetries: 0, timeout: 20000 }); // OPENAI_API_KEY, OPENAI_BASE_URL
  const chat = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "hi" }],
  });
  console.log(JSON.stringify({ usage: chat.usage, node: process.versions.node }));
}

main().catch((err) => {
  console.error(String(err));
  process.exit(1);
});

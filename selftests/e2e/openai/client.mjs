// client.mjs - the real `openai` npm client, used as an agent uses it, against
// an OpenAI-compatible endpoint.
//
// Run against kars's fake upstream it proves the fake speaks the wire format
// the real SDK understands (every field below is parsed by the SDK, not by
// us); run against kars-router in front of the same fake it proves the router
// passes that format through. Only the base URLs differ between the two:
//
//   node client.mjs --base-url http://127.0.0.1:PORT/v1
//        [--azure-base-url http://127.0.0.1:PORT/openai/v1]
//        [--upstream http://127.0.0.1:FAKE_PORT]      (for /_fake/last-request)
//        [--api-key KEY] [--expect-upstream-auth "Bearer ..."]
//        [--forbid-upstream-auth "Bearer ..."]
//
// Prints "PASS <name>" or "FAIL <name>: <why>" per check and exits 1 if any
// failed. The expected text and token counts are the fake's deterministic
// ones (see selftests/fake_upstream/fake_upstream.c, "Tokens").
import OpenAI from 'openai';

const opts = {
	'base-url': null,
	'azure-base-url': null,
	upstream: null,
	'api-key': 'sk-kars-e2e-agent-key',
	'expect-upstream-auth': null,
	'forbid-upstream-auth': null,
};
for (let i = 2; i < process.argv.length; i += 2) {
	const name = process.argv[i].replace(/^--/, '');
	if (!(name in opts) || i + 1 >= process.argv.length) {
		console.error(`client.mjs: unknown or incomplete option ${process.argv[i]}`);
		process.exit(2);
	}
	opts[name] = process.argv[i + 1];
}
if (!opts['base-url']) {
	console.error('client.mjs: --base-url is required');
	process.exit(2);
}
const origin = new URL(opts['base-url']).origin;
const upstream = opts.upstream ?? origin;
// Talking to the fake directly, it must see exactly what the SDK sent.
const expectAuth =
	opts['expect-upstream-auth'] ?? (upstream === origin ? `Bearer ${opts['api-key']}` : null);

const REPLY = 'Hello! This is kars fake-upstream.';
const PROMPT = 'Say hello to kars.';
const MESSAGES = [{ role: 'user', content: PROMPT }];
// prompt: 3 + (3 + 5 tokens), reply: 9 tokens
const CHAT_USAGE = { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 };
const RESP_USAGE = { input_tokens: 11, output_tokens: 9, total_tokens: 20 };
const COMPLETION_USAGE = { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 };

const client = new OpenAI({ baseURL: opts['base-url'], apiKey: opts['api-key'] });
const azure = opts['azure-base-url']
	? new OpenAI({ baseURL: opts['azure-base-url'], apiKey: opts['api-key'] })
	: null;

let passed = 0;
let failed = 0;

function check(cond, what) {
	if (!cond) throw new Error(what);
}

function eq(actual, expected, what) {
	const a = JSON.stringify(actual);
	const e = JSON.stringify(expected);
	if (a !== e) throw new Error(`${what}: got ${a}, want ${e}`);
}

function pick(obj, keys) {
	return Object.fromEntries(keys.map((k) => [k, obj?.[k]]));
}

async function test(name, fn) {
	let timer;
	try {
		await Promise.race([
			fn(),
			new Promise((_, reject) => {
				timer = setTimeout(() => reject(new Error('timed out after 20 s')), 20000);
			}),
		]);
		passed++;
		console.log(`PASS ${name}`);
	} catch (e) {
		failed++;
		console.log(`FAIL ${name}: ${e?.stack ?? e}`);
	} finally {
		clearTimeout(timer);
	}
}

// Expects fn to throw an error of class cls (and status); returns it.
async function throws(fn, cls, status) {
	try {
		await fn();
	} catch (e) {
		check(e instanceof cls, `threw ${e?.constructor?.name} (${e?.message}), want ${cls.name}`);
		if (status !== undefined) eq(e.status, status, 'status');
		return e;
	}
	throw new Error(`did not throw ${cls.name}`);
}

async function lastUpstreamRequest() {
	const res = await fetch(`${upstream}/_fake/last-request`);
	check(res.ok, `GET ${upstream}/_fake/last-request: ${res.status}`);
	return res.json();
}

function upstreamHeader(rec, name) {
	const h = rec.headers.find(([k]) => k.toLowerCase() === name);
	return h ? h[1] : null;
}

// --- Chat Completions ------------------------------------------------------------

await test('chat.completions.create', async () => {
	const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES });
	eq(r.object, 'chat.completion', 'object');
	check(/^chatcmpl-[A-Za-z0-9]{29}$/.test(r.id), `id ${r.id}`);
	eq(r.model, 'gpt-4o-mini', 'model');
	eq(r.choices.length, 1, 'choices');
	eq(r.choices[0].message.role, 'assistant', 'role');
	eq(r.choices[0].message.content, REPLY, 'content');
	eq(r.choices[0].finish_reason, 'stop', 'finish_reason');
	eq(pick(r.usage, Object.keys(CHAT_USAGE)), CHAT_USAGE, 'usage');
	check(Number.isInteger(r.created), 'created');
	check(typeof r.system_fingerprint === 'string', 'system_fingerprint');
	check(typeof r._request_id === 'string' && r._request_id.length > 0, 'x-request-id');
});

await test('upstream saw the request', async () => {
	const rec = await lastUpstreamRequest();
	eq(rec.method, 'POST', 'method');
	check(rec.uri.endsWith('/v1/chat/completions'), `uri ${rec.uri}`);
	const body = JSON.parse(rec.body);
	eq(body.model, 'gpt-4o-mini', 'model');
	eq(body.messages, MESSAGES, 'messages');
	const auth = upstreamHeader(rec, 'authorization');
	if (expectAuth !== null) eq(auth, expectAuth, 'authorization');
	if (opts['forbid-upstream-auth'] !== null)
		check(auth !== opts['forbid-upstream-auth'], "the agent's authorization reached upstream");
});

await test('chat.completions.create stream include_usage', async () => {
	const stream = await client.chat.completions.create({
		model: 'gpt-4o-mini',
		messages: MESSAGES,
		stream: true,
		stream_options: { include_usage: true },
	});
	let text = '';
	let finish = null;
	const chunks = [];
	for await (const chunk of stream) {
		chunks.push(chunk);
		eq(chunk.object, 'chat.completion.chunk', 'object');
		const c = chunk.choices[0];
		if (c?.delta?.content) text += c.delta.content;
		if (c?.finish_reason) finish = c.finish_reason;
	}
	eq(text, REPLY, 'streamed content');
	eq(finish, 'stop', 'finish_reason');
	const withUsage = chunks.filter((c) => c.usage);
	eq(withUsage.length, 1, 'chunks with usage');
	check(withUsage[0] === chunks[chunks.length - 1], 'usage is not in the last chunk');
	eq(withUsage[0].choices, [], 'choices of the usage chunk');
	eq(pick(withUsage[0].usage, Object.keys(CHAT_USAGE)), CHAT_USAGE, 'usage');
	eq(new Set(chunks.map((c) => c.id)).size, 1, 'one id for all chunks');
});

await test('chat.completions.create stream include_usage false', async () => {
	// The agent opted out: it must not get a usage chunk (a router that
	// forces usage on for accounting has to withhold it).
	const stream = await client.chat.completions.create({
		model: 'gpt-4o-mini',
		messages: MESSAGES,
		stream: true,
		stream_options: { include_usage: false },
	});
	let text = '';
	for await (const chunk of stream) {
		check(!chunk.usage, 'a usage chunk arrived');
		check(chunk.choices.length === 1, 'a chunk without choices arrived');
		text += chunk.choices[0].delta?.content ?? '';
	}
	eq(text, REPLY, 'streamed content');
});

await test('chat.completions.stream helper', async () => {
	const runner = client.chat.completions.stream({
		model: 'gpt-4o-mini',
		messages: MESSAGES,
		stream_options: { include_usage: true },
	});
	const deltas = [];
	runner.on('content', (delta) => deltas.push(delta));
	const final = await runner.finalChatCompletion();
	eq(final.choices[0].message.content, REPLY, 'final content');
	eq(deltas.join(''), REPLY, 'content events');
	eq(final.choices[0].finish_reason, 'stop', 'finish_reason');
	eq(pick(final.usage, Object.keys(CHAT_USAGE)), CHAT_USAGE, 'usage');
});

await test('chat max_completion_tokens cuts the reply', async () => {
	const r = await client.chat.completions.create({
		model: 'gpt-4o-mini',
		messages: MESSAGES,
		max_completion_tokens: 3,
	});
	eq(r.choices[0].message.content, 'Hello! This', 'content');
	eq(r.choices[0].finish_reason, 'length', 'finish_reason');
	eq(r.usage.completion_tokens, 3, 'completion_tokens');
});

// --- Responses ----------------------------------------------------------------------

await test('responses.create', async () => {
	const r = await client.responses.create({ model: 'gpt-4.1', input: PROMPT });
	eq(r.object, 'response', 'object');
	check(/^resp_[0-9a-f]{48}$/.test(r.id), `id ${r.id}`);
	eq(r.status, 'completed', 'status');
	eq(r.model, 'gpt-4.1', 'model');
	eq(r.output_text, REPLY, 'output_text'); // computed by the SDK from output[]
	eq(r.output[0].type, 'message', 'output[0].type');
	eq(pick(r.usage, Object.keys(RESP_USAGE)), RESP_USAGE, 'usage');
});

await test('responses.create stream', async () => {
	const stream = await client.responses.create({ model: 'gpt-4.1', input: PROMPT, stream: true });
	const types = [];
	let text = '';
	let last = null;
	for await (const event of stream) {
		eq(event.sequence_number, types.length, 'sequence_number');
		types.push(event.type);
		if (event.type === 'response.output_text.delta') text += event.delta;
		last = event;
	}
	eq(text, REPLY, 'deltas');
	eq(types[0], 'response.created', 'first event');
	eq(last.type, 'response.completed', 'last event');
	eq(last.response.status, 'completed', 'status');
	eq(pick(last.response.usage, Object.keys(RESP_USAGE)), RESP_USAGE, 'usage');
	eq(last.response.output[0].content[0].text, REPLY, 'final text');
});

await test('responses.stream helper', async () => {
	const stream = client.responses.stream({ model: 'gpt-4.1', input: PROMPT });
	const deltas = [];
	stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
	const final = await stream.finalResponse();
	eq(final.output_text, REPLY, 'output_text');
	eq(deltas.join(''), REPLY, 'delta events');
	eq(pick(final.usage, Object.keys(RESP_USAGE)), RESP_USAGE, 'usage');
});

// --- Completions, embeddings, models -------------------------------------------------

await test('completions.create', async () => {
	const r = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: PROMPT });
	eq(r.object, 'text_completion', 'object');
	check(/^cmpl-/.test(r.id), `id ${r.id}`);
	eq(r.choices[0].text, REPLY, 'text');
	eq(pick(r.usage, Object.keys(COMPLETION_USAGE)), COMPLETION_USAGE, 'usage');
});

await test('completions.create stream include_usage', async () => {
	const stream = await client.completions.create({
		model: 'gpt-3.5-turbo-instruct',
		prompt: PROMPT,
		stream: true,
		stream_options: { include_usage: true },
	});
	let text = '';
	let usage = null;
	for await (const chunk of stream) {
		text += chunk.choices[0]?.text ?? '';
		if (chunk.usage) usage = chunk.usage;
	}
	eq(text, REPLY, 'text');
	eq(pick(usage, Object.keys(COMPLETION_USAGE)), COMPLETION_USAGE, 'usage');
});

await test('embeddings.create', async () => {
	// The SDK asks for base64 and decodes the float32s itself.
	const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: PROMPT });
	eq(r.object, 'list', 'object');
	eq(r.model, 'text-embedding-3-small', 'model');
	eq(r.data.length, 1, 'data');
	const v = Array.from(r.data[0].embedding);
	eq(v.length, 1536, 'dimensions');
	const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
	check(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
	eq(r.usage, { prompt_tokens: 5, total_tokens: 5 }, 'usage');
	// The same input as JSON floats gives the same vector.
	const f = await client.embeddings.create({
		model: 'text-embedding-3-small',
		input: [PROMPT, 'second input'],
		encoding_format: 'float',
		dimensions: 1536,
	});
	eq(f.data.length, 2, 'data of two inputs');
	eq(f.data[1].index, 1, 'index');
	check(
		f.data[0].embedding.every((x, i) => Math.abs(x - v[i]) < 1e-6),
		'float and base64 vectors differ'
	);
});

await test('models.list and retrieve', async () => {
	const ids = [];
	for await (const m of client.models.list()) {
		eq(m.object, 'model', 'object');
		ids.push(m.id);
	}
	check(ids.includes('gpt-4o-mini') && ids.includes('text-embedding-3-small'), `ids ${ids}`);
	const m = await client.models.retrieve('gpt-4o-mini');
	eq(m.id, 'gpt-4o-mini', 'retrieved id');
	await throws(() => client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
});

// --- errors --------------------------------------------------------------------------
// The fake's failure knobs ride in the body's metadata: a router forwards the body
// untouched but drops request headers it does not know.

await test('429 is a RateLimitError', async () => {
	const e = await throws(
		() =>
			client.chat.completions.create(
				{ model: 'gpt-4o-mini', messages: MESSAGES, metadata: { 'x-fake-status': '429' } },
				{ maxRetries: 0 }
			),
		OpenAI.RateLimitError,
		429
	);
	eq(e.code, 'rate_limit_exceeded', 'code');
	eq(e.headers.get('retry-after'), '1', 'retry-after');
});

await test('500 and 503 are InternalServerErrors', async () => {
	for (const status of [500, 503]) {
		const e = await throws(
			() =>
				client.responses.create(
					{ model: 'gpt-4.1', input: PROMPT, metadata: { 'x-fake-status': String(status) } },
					{ maxRetries: 0 }
				),
			OpenAI.InternalServerError,
			status
		);
		eq(e.type, 'server_error', 'type');
	}
});

await test('an error mid-stream is an APIError', async () => {
	for (const [what, make] of [
		[
			'chat',
			(metadata) =>
				client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES, stream: true, metadata }),
		],
		['responses', (metadata) => client.responses.create({ model: 'gpt-4.1', input: PROMPT, stream: true, metadata })],
	]) {
		let seen = 0;
		const e = await throws(async () => {
			const stream = await make({ 'x-fake-stream-error': '3' });
			for await (const _ of stream) seen++;
		}, OpenAI.APIError);
		check(/server had an error/.test(e.message), `${what}: message ${e.message}`);
		eq(seen, 3, `${what}: events before the error`);
	}
});

await test('a hang-up mid-stream is an error', async () => {
	let text = '';
	try {
		const stream = await client.chat.completions.create(
			{ model: 'gpt-4o-mini', messages: MESSAGES, stream: true, metadata: { 'x-fake-drop-after': '3' } },
			{ maxRetries: 0 }
		);
		for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
	} catch (e) {
		eq(text, 'Hello!', 'content before the hang-up');
		return;
	}
	throw new Error(`the stream ended without an error after "${text}"`);
});

await test('SSE split into 7-byte writes', async () => {
	const stream = await client.chat.completions.create(
		{
			model: 'gpt-4o-mini',
			messages: MESSAGES,
			stream: true,
			stream_options: { include_usage: true },
			metadata: { 'x-fake-chunk-bytes': '7', 'x-fake-delay-ms': '1' },
		}
	);
	let text = '';
	let usage = null;
	for await (const chunk of stream) {
		text += chunk.choices[0]?.delta?.content ?? '';
		usage = chunk.usage ?? usage;
	}
	eq(text, REPLY, 'content');
	eq(pick(usage, Object.keys(CHAT_USAGE)), CHAT_USAGE, 'usage');
});

// --- Azure OpenAI v1 (/openai/v1) ----------------------------------------------------

if (azure) {
	await test('azure chat.completions.create annotations', async () => {
		const r = await azure.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES });
		eq(r.choices[0].message.content, REPLY, 'content');
		eq(pick(r.usage, Object.keys(CHAT_USAGE)), CHAT_USAGE, 'usage');
		eq(r.prompt_filter_results[0].content_filter_results.hate, { filtered: false, severity: 'safe' }, 'prompt annotation');
		eq(r.choices[0].content_filter_results.sexual.severity, 'safe', 'output annotation');
	});

	await test('azure stream (prompt annotations first, empty choices)', async () => {
		const stream = await azure.chat.completions.create({
			model: 'gpt-4o',
			messages: MESSAGES,
			stream: true,
			stream_options: { include_usage: true },
		});
		const chunks = [];
		for await (const chunk of stream) chunks.push(chunk);
		check(chunks[0].prompt_filter_results?.length === 1, 'first chunk has no prompt_filter_results');
		eq(chunks[0].choices, [], 'first chunk choices');
		const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
		eq(text, REPLY, 'content');
		eq(pick(chunks[chunks.length - 1].usage, Object.keys(CHAT_USAGE)), CHAT_USAGE, 'usage');
	});

	await test('azure output filtered', async () => {
		const r = await azure.chat.completions.create(
			{ model: 'gpt-4o', messages: MESSAGES },
			{ headers: { 'x-fake-content-filter': 'completion' } }
		);
		eq(r.choices[0].finish_reason, 'content_filter', 'finish_reason');
		eq(r.choices[0].content_filter_results.sexual, { filtered: true, severity: 'medium' }, 'annotation');
		eq(r.choices[0].message.content, 'Hello! This is', 'content so far');
	});

	await test('azure prompt filtered is a BadRequestError', async () => {
		const e = await throws(
			() =>
				azure.chat.completions.create(
					{ model: 'gpt-4o', messages: MESSAGES },
					{ headers: { 'x-fake-content-filter': 'prompt' }, maxRetries: 0 }
				),
			OpenAI.BadRequestError,
			400
		);
		eq(e.code, 'content_filter', 'code');
		eq(e.error.innererror.content_filter_result.sexual.filtered, true, 'innererror');
	});
}

console.log(`client: ${passed} ok, ${failed} not ok`);
process.exit(failed ? 1 : 0);

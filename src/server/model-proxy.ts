// One chat completion forwarded to the configured upstream and recorded in the ledger
// (model.call: SHA-256 of request and response, model, tokens, latency, status), shared by the
// token-authenticated API route and the route sandboxes reach over their egress link. The
// agent never holds the upstream key (threat: a sandboxed agent exfiltrating the model
// credential): Praetor adds it here.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { newId } from '../util/index.ts';

export interface ModelGatewayOptions { upstream: string; apiKey?: string }

export const ChatBody = z.looseObject({
  model: z.string().min(1).max(200).describe('model name, passed to the upstream'),
  messages: z.array(z.unknown()).min(1).describe('chat messages (OpenAI format)'),
  stream: z.boolean().optional().describe('server-sent events'),
}).describe('an OpenAI chat completions request (other OpenAI fields pass through)');
export type ChatRequest = z.infer<typeof ChatBody>;

export interface ModelCallTags { sandboxId: string; episodeId?: string; step?: number; via: 'api' | 'sandbox' }

export interface OpenCall { res: Response; raw: string; body: ChatRequest; id: string; started: number }

/** The upstream's host (name or IPv4 literal), for policies that deny it to sandboxes directly. */
export function upstreamHost(o: ModelGatewayOptions): string {
  return new URL(o.upstream).hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/**
 * Calls the upstream. Nothing has been written to the client yet, so a failure here is still a
 * clean error response (503 with the reason) rather than a cut stream.
 */
export async function openChat(o: ModelGatewayOptions, body: ChatRequest): Promise<OpenCall> {
  const raw = JSON.stringify(body);
  const started = performance.now();
  const res = await fetch(`${o.upstream.replace(/\/+$/, '')}/chat/completions`, {
    method: 'POST', body: raw,
    headers: { 'content-type': 'application/json', ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
  }).catch((e: unknown) => { throw new PraetorError('RUNTIME_UNAVAILABLE', `model upstream unreachable: ${(e as Error).message}`, { hint: 'check --model-upstream' }); });
  return { res, raw, body, id: newId('mc'), started };
}

/** Streams the upstream's answer (JSON or server-sent events) to `out`, then records the call. */
export async function relayChat(call: OpenCall, out: ServerResponse, bus: EventBus, tags: ModelCallTags): Promise<void> {
  const { res } = call;
  out.writeHead(res.status, {
    'content-type': res.headers.get('content-type') ?? (call.body.stream ? 'text/event-stream' : 'application/json'),
    'x-praetor-model-call-id': call.id,
  });
  const hash = createHash('sha256');
  let text = '';
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        if (text.length < 1 << 20) text += Buffer.from(chunk).toString();
        if (!out.write(chunk)) await new Promise((r) => { out.once('drain', r); out.once('close', r); });
        if (out.destroyed) break;
      }
    }
  } finally {
    out.end();
    const usage = /"usage"\s*:\s*\{[^}]*"prompt_tokens"\s*:\s*(\d+)[^}]*"completion_tokens"\s*:\s*(\d+)/.exec(text);
    bus.publish({
      kind: 'model.call', sandboxId: tags.sandboxId, ...(tags.episodeId ? { episodeId: tags.episodeId } : {}),
      ...(tags.step !== undefined ? { step: tags.step } : {}), modelCallId: call.id, model: call.body.model, via: tags.via, status: res.status,
      requestSha256: createHash('sha256').update(call.raw).digest('hex'), responseSha256: hash.digest('hex'),
      ...(usage ? { promptTokens: Number(usage[1]), completionTokens: Number(usage[2]) } : {}),
      latencyMs: Math.round((performance.now() - call.started) * 1000) / 1000,
    });
  }
}

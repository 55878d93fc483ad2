// What a failed Forgejo sign-in tells the operator (cause) and the user (message), per kind of failure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseBodyError } from 'oauth4webapi';
import { describeUpstreamFailure } from '../../src/oauth/callback.ts';

const URL_ = 'http://forgejo.example:3000';

function bodyError(error: string, description: string): ResponseBodyError {
  const res = new Response(JSON.stringify({ error, error_description: description }), { status: 400 });
  return new ResponseBodyError('server responded with an error in the response body', {
    cause: { error, error_description: description },
    response: res,
  });
}

describe('describeUpstreamFailure', () => {
  it('names refused client credentials and the setting to fix', () => {
    for (const [error, description] of [
      ['unauthorized_client', 'invalid client secret'],
      ['invalid_client', "cannot load client with client id: 'x'"],
    ] as const) {
      const f = describeUpstreamFailure(bodyError(error, description), URL_);
      assert.equal(f.cause, `Forgejo refused the broker's client credentials (${error}: ${description})`);
      assert.match(f.message, /FORGEJO_CLIENT_ID or FORGEJO_CLIENT_SECRET/);
    }
  });

  it('quotes any other refusal of the code exchange', () => {
    const f = describeUpstreamFailure(bodyError('unauthorized_client', 'client is not authorized'), URL_);
    assert.equal(
      f.cause,
      'Forgejo refused the code exchange (unauthorized_client: client is not authorized)',
    );
    assert.match(f.message, /Try again from your application/);
  });

  it('names an unreachable Forgejo by its URL, for refused connections, unknown hosts and timeouts', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    assert.equal(
      describeUpstreamFailure(refused, URL_).cause,
      `Forgejo at ${URL_} is unreachable (ECONNREFUSED)`,
    );
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    assert.equal(
      describeUpstreamFailure(timeout, URL_).cause,
      `Forgejo at ${URL_} is unreachable (TimeoutError)`,
    );
    assert.match(
      describeUpstreamFailure(refused, URL_).message,
      /could not reach Forgejo at http:\/\/forgejo\.example:3000/,
    );
  });

  it('anything else is an unexpected answer, reported without claiming a cause', () => {
    const f = describeUpstreamFailure(
      new Error('Forgejo userinfo lacks a numeric sub or preferred_username'),
      URL_,
    );
    assert.equal(
      f.cause,
      'unexpected answer from Forgejo (Forgejo userinfo lacks a numeric sub or preferred_username)',
    );
    assert.match(f.message, /Tell the operator/);
  });
});

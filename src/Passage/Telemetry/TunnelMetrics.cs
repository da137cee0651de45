using System.Buffers;
using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;

namespace Passage.Telemetry;

/// <summary>
/// The counters of one end of <c>passage tunnel</c> (meter <c>Passage.Tunnel</c>): whether its session with the peer is
/// up, sessions established, requests by outcome, and the bytes of the link. All aggregate: no tag carries an address,
/// a host or a path.
/// </summary>
public sealed class TunnelMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Passage.Tunnel";

    private readonly Meter _meter;
    private readonly Counter<long> _established;
    private readonly Counter<long> _requests;
    // Sessions open now: the client end has one at most; the server end holds one per client end that has it open.
    private int _open;
    private long _sent;
    private long _received;

    /// <summary>Creates the instruments on a new meter.</summary>
    public TunnelMetrics()
    {
        _meter = new Meter(MeterName);
        _meter.CreateObservableGauge("passage.tunnel.session.up", () => IsUp ? 1L : 0L, "{session}",
            "1 while the session with the peer is up (at the server end: while a client end holds one), else 0");
        _established = _meter.CreateCounter<long>("passage.tunnel.sessions.established", "{session}",
            "Sessions with the peer established since the start");
        _requests = _meter.CreateCounter<long>("passage.tunnel.requests", "{request}",
            "Requests carried, by outcome: answered (the far side's answer passed on whole), refused (answered with a Proxy-Status naming an error, error: its type when RFC 9209 registers it, else other), aborted (the exchange broke off before its answer was whole)");
        _meter.CreateObservableCounter("passage.tunnel.link.bytes", ObserveBytes, "By",
            "Bytes of the link to the peer (TLS records included), by direction: sent, received");
    }

    /// <summary>The meter, for listeners that filter by instance.</summary>
    public Meter Meter => _meter;

    /// <summary>Whether a session with the peer is up now.</summary>
    public bool IsUp => Volatile.Read(ref _open) > 0;

    /// <summary>Counts a session established (open until <see cref="SessionEnded"/>).</summary>
    internal void SessionStarted()
    {
        Interlocked.Increment(ref _open);
        _established.Add(1);
    }

    /// <summary>A session counted by <see cref="SessionStarted"/> has ended.</summary>
    internal void SessionEnded() => Interlocked.Decrement(ref _open);

    /// <summary>The client end's connection to the peer, its bytes counted as they are read and written.</summary>
    internal Stream Count(Stream link) => new CountedStream(link, this);

    /// <summary>A connection the server end accepted, below TLS: its bytes counted as they are consumed and written.</summary>
    internal IDuplexPipe Count(IDuplexPipe link) => new CountedPipe(new CountedReader(link.Input, this), new CountedWriter(link.Output, this));

    private void Sent(long count) => Interlocked.Add(ref _sent, count);

    private void Received(long count) => Interlocked.Add(ref _received, count);

    /// <summary>Serves a request with <paramref name="handle"/> and counts it by how its exchange ended.</summary>
    internal async Task ServeAsync(HttpContext context, Func<HttpContext, Task> handle)
    {
        try
        {
            await handle(context).ConfigureAwait(false);
        }
        catch
        {
            Failed();
            throw;
        }
        Served(context);
    }

    /// <summary>Counts a request served, by how its exchange ended (see the instrument's description).</summary>
    private void Served(HttpContext context)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            _requests.Add(1, new KeyValuePair<string, object?>("outcome", "aborted"));
        }
        else if (Refusal(context) is { } error)
        {
            _requests.Add(1, new KeyValuePair<string, object?>("outcome", "refused"), new KeyValuePair<string, object?>("error", ErrorLabel(error)));
        }
        else
        {
            _requests.Add(1, new KeyValuePair<string, object?>("outcome", "answered"));
        }
    }

    /// <summary>Where <see cref="Refused"/> keeps a request's refusal.</summary>
    private static readonly object RefusalKey = new();

    /// <summary>
    /// Records that the tunnel refused the request, with <paramref name="errorType"/>: this end answered it itself, or the
    /// other end did and said so. Only this counts a request refused: a Proxy-Status on the answer may be the backend's own
    /// (a backend that is a proxy itself), an answer like any other, and its error type any string the backend chose.
    /// </summary>
    internal static void Refused(HttpContext context, string errorType) => context.Items[RefusalKey] = errorType;

    /// <summary>The error type <see cref="Refused"/> recorded for the request, null when the tunnel did not refuse it.</summary>
    internal static string? Refusal(HttpContext context) => context.Items.TryGetValue(RefusalKey, out var error) ? error as string : null;

    /// <summary>
    /// The error types RFC 9209 §2.3 registers: the only values of the <c>error</c> tag besides <see cref="OtherError"/>. Every
    /// one Passage itself answers with is among them.
    /// </summary>
    private static readonly FrozenSet<string> s_registeredErrorTypes = FrozenSet.Create(StringComparer.Ordinal,
        "dns_timeout", "dns_error", "destination_not_found", "destination_unavailable", "destination_ip_prohibited",
        "destination_ip_unroutable", "connection_refused", "connection_terminated", "connection_timeout",
        "connection_read_timeout", "connection_write_timeout", "connection_limit_reached", "tls_protocol_error",
        "tls_certificate_error", "tls_alert_received", "http_request_error", "http_request_denied", "http_response_incomplete",
        "http_response_header_section_size", "http_response_header_size", "http_response_body_size",
        "http_response_trailer_section_size", "http_response_trailer_size", "http_response_transfer_coding",
        "http_response_content_coding", "http_response_timeout", "http_upgrade_failed", "http_protocol_error",
        "proxy_internal_response", "proxy_internal_error", "proxy_configuration_error", "proxy_loop_detected");

    /// <summary>The <c>error</c> tag of a refusal whose error type RFC 9209 does not register.</summary>
    internal const string OtherError = "other";

    /// <summary>
    /// The <c>error</c> tag for <paramref name="errorType"/>: itself when RFC 9209 registers it, else <see cref="OtherError"/>.
    /// A refusal of the other end's carries the error type it chose, any token at all: each new one would have been a new
    /// series on every scrape from then on, so a peer (or whoever took its place in a configuration) could grow this end's
    /// metrics without bound.
    /// </summary>
    internal static string ErrorLabel(string errorType) => s_registeredErrorTypes.Contains(errorType) ? errorType : OtherError;

    /// <summary>Counts a request whose handling threw: it broke off.</summary>
    private void Failed() => _requests.Add(1, new KeyValuePair<string, object?>("outcome", "aborted"));

    /// <summary>Each direction once bytes have gone that way.</summary>
    private IEnumerable<Measurement<long>> ObserveBytes()
    {
        if (Volatile.Read(ref _sent) is var sent and > 0)
        {
            yield return new Measurement<long>(sent, new KeyValuePair<string, object?>("direction", "sent"));
        }
        if (Volatile.Read(ref _received) is var received and > 0)
        {
            yield return new Measurement<long>(received, new KeyValuePair<string, object?>("direction", "received"));
        }
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();

    /// <summary>A stream that counts what passes through it (the HTTP/2 client's TLS reads and writes its connection so).</summary>
    private sealed class CountedStream(Stream inner, TunnelMetrics metrics) : Transport.DelegatingStream(inner)
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = Inner.Read(buffer, offset, count);
            metrics.Received(read);
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            metrics.Received(read);
            return read;
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Inner.Write(buffer, offset, count);
            metrics.Sent(count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            metrics.Sent(buffer.Length);
        }
    }

    private sealed record CountedPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>Counts what its reader consumes (what it only examines is read again, and counted then).</summary>
    private sealed class CountedReader(PipeReader inner, TunnelMetrics metrics) : PipeReader
    {
        private ReadOnlySequence<byte> _buffer;

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            _buffer = result.Buffer;
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }
            _buffer = result.Buffer;
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed)
        {
            Consumed(consumed);
            inner.AdvanceTo(consumed);
        }

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            Consumed(consumed);
            inner.AdvanceTo(consumed, examined);
        }

        private void Consumed(SequencePosition consumed)
        {
            if (!_buffer.IsEmpty)
            {
                metrics.Received(_buffer.Slice(_buffer.Start, consumed).Length);
            }
            _buffer = default;
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }

    /// <summary>Counts what is written through it.</summary>
    private sealed class CountedWriter(PipeWriter inner, TunnelMetrics metrics) : PipeWriter
    {
        public override void Advance(int bytes)
        {
            metrics.Sent(bytes);
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            metrics.Sent(source.Length);
            return inner.WriteAsync(source, cancellationToken);
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }
}

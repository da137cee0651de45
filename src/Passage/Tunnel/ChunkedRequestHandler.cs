using System.Globalization;
using System.Net.Sockets;
using System.Net;
using System.Text;
using Passage.Http;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// Sends a request that carries trailer fields to the HTTP/1.1 backend, on a connection of its own, and reads
/// the answer with Passage's own HTTP/1.1 reader. The .NET HTTP client frames request bodies itself and has no
/// way to send request trailers, so the server end sends requests that declare them this way: the content
/// (<see cref="StreamingContent"/> with trailers) writes the chunked framing and the trailer section, this
/// handler the head, and the answer comes back as an <see cref="HttpResponseMessage"/> like any other, its
/// trailers in <see cref="HttpResponseMessage.TrailingHeaders"/>.
/// </summary>
/// <remarks>
/// The connection is used once (<c>Connection: close</c>): such requests are rare, and an unpooled connection
/// keeps this path small. It counts with the others against the backend connections' cap
/// (<see cref="BackendConnections"/>). The request body is sent while the answer is read, so a backend that answers
/// as it reads (an echo, an early refusal) never deadlocks against a large upload.
/// </remarks>
internal sealed class ChunkedRequestHandler(TimeSpan connectTimeout, bool noDelay, BackendConnections connections) : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Content is not StreamingContent { IsChunkFramed: true } content || request.RequestUri is not { } uri)
        {
            throw new InvalidOperationException("only requests with a chunk-framed body go this way");
        }
        var head = FormatHead(request, uri);
        var exchange = new Exchange(await ConnectAsync(uri, cancellationToken).ConfigureAwait(false), cancellationToken);
        try
        {
            await exchange.Stream.WriteAsync(head, cancellationToken).ConfigureAwait(false);
            var sending = content.CopyToAsync(exchange.Stream, exchange.Token);
            exchange.Sending = sending;
            var reading = ReadHeadAsync(exchange.Reader, request, exchange.Token);
            exchange.Reading = reading;
            if (await Task.WhenAny(reading, sending).ConfigureAwait(false) == sending && sending.IsFaulted
                && content.Result != BodyCopyResult.DestinationFailed)
            {
                // The sender broke off: the backend got a cut-off body, and no answer to it can be passed on as whole.
                // (Had the backend stopped taking the body instead, its answer may already be there: read on.)
                await sending.ConfigureAwait(false);
            }
            var (response, contentFields) = await reading.ConfigureAwait(false);
            try
            {
                response.Content = new ExchangeContent(new BackendBody(exchange, response, contentFields, HasNoBody(request, response)));
            }
            catch
            {
                response.Dispose();
                throw;
            }
            foreach (var (name, value) in contentFields)
            {
                response.Content.Headers.TryAddWithoutValidation(name, value);
            }
            return response;
        }
        catch
        {
            // The body being sent and the head being read end before the exchange does: neither outlives its request.
            await exchange.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<BackendConnections.Connection> ConnectAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(connectTimeout);
        try
        {
            return await connections.ConnectAsync(new DnsEndPoint(uri.IdnHost, uri.Port), noDelay, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpRequestException(HttpRequestError.ConnectionError, "connecting to the backend timed out", new SocketException((int)SocketError.TimedOut));
        }
        catch (SocketException e)
        {
            throw new HttpRequestException(HttpRequestError.ConnectionError, $"connecting to the backend failed ({e.SocketErrorCode})", e);
        }
    }

    /// <summary>The request line and fields; the body is announced as chunked, the connection as used once, and trailers as accepted when the request accepts them.</summary>
    private static byte[] FormatHead(HttpRequestMessage request, Uri uri)
    {
        var head = new StringBuilder();
        head.Append(request.Method.Method).Append(' ').Append(uri.PathAndQuery).Append(" HTTP/1.1\r\n");
        head.Append("Host: ").Append(request.Headers.Host ?? uri.Authority).Append("\r\n");
        var fields = request.Headers.NonValidated.Concat(request.Content!.Headers.NonValidated);
        foreach (var (name, values) in fields)
        {
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase) || !TunnelHeaders.IsEndToEnd(name, default)
                || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            foreach (var value in values)
            {
                if (!FieldSyntax.IsToken(name) || !FieldSyntax.IsValue(value))
                {
                    throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the request field {name} cannot be written in HTTP/1.1");
                }
                head.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }
        head.Append("Transfer-Encoding: chunked\r\n");
        // TE is this hop's, so the loop above left it: the "trailers" the request was given for an application that accepts
        // them (MessageCopy.CreateRequest) goes on, named in Connection as RFC 9110 §10.1.4 requires.
        head.Append(AsksForTrailers(request) ? "TE: trailers\r\nConnection: TE, close\r\n\r\n" : "Connection: close\r\n\r\n");
        return Encoding.Latin1.GetBytes(head.ToString());
    }

    /// <summary>Whether the request asks its recipient for trailer fields (<c>TE: trailers</c>).</summary>
    private static bool AsksForTrailers(HttpRequestMessage request) =>
        request.Headers.NonValidated.TryGetValues("TE", out var te) && te.Any(value => value.Equals("trailers", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Reads the final answer's status line and fields (RFC 9112 §4, §5), passing over interim 1xx answers. The
    /// content fields (Content-Type, Content-Length, ...) come back apart: they belong on the content.
    /// </summary>
    private static async Task<(HttpResponseMessage, List<KeyValuePair<string, string>>)> ReadHeadAsync(Http1Reader reader, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        for (var interim = 0; ; interim++)
        {
            if (interim > InterimAnswers.Max)
            {
                throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the backend sent more than {InterimAnswers.Max} interim (1xx) answers");
            }
            var budget = TunnelHeaders.MaxAnswerHeadBytes;
            var statusLine = await ReadHeadLineAsync(reader, budget, cancellationToken).ConfigureAwait(false)
                ?? throw new HttpRequestException(HttpRequestError.ResponseEnded, "the backend closed the connection before answering");
            budget -= statusLine.Length + 2;
            if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1.", StringComparison.Ordinal) || statusLine[8] != ' '
                || !int.TryParse(statusLine.AsSpan(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var status)
                || status < 100 || (statusLine.Length > 12 && statusLine[12] != ' '))
            {
                throw new HttpRequestException(HttpRequestError.InvalidResponse, "the backend's status line is malformed");
            }
            var contentFields = new List<KeyValuePair<string, string>>();
            var response = new HttpResponseMessage((HttpStatusCode)status)
            {
                Version = HttpVersion.Version11,
                ReasonPhrase = statusLine.Length > 13 ? statusLine[13..] : null,
                RequestMessage = request,
            };
            while (true)
            {
                var line = await ReadHeadLineAsync(reader, budget, cancellationToken).ConfigureAwait(false);
                if (line is null)
                {
                    throw new HttpRequestException(HttpRequestError.ResponseEnded, "the backend closed the connection inside its answer head");
                }
                if (line.Length == 0)
                {
                    break;
                }
                budget -= line.Length + 2;
                var (name, value) = FieldSyntax.ParseLine(line)
                    ?? throw new HttpRequestException(HttpRequestError.InvalidResponse, "a field in the backend's answer head is malformed");
                if (MessageCopy.IsContentField(name))
                {
                    contentFields.Add(new(name, value));
                }
                else
                {
                    response.Headers.TryAddWithoutValidation(name, value);
                }
            }
            if (status >= 200)
            {
                return (response, contentFields);
            }
            response.Dispose();
            if (status == 101)
            {
                throw new HttpRequestException(HttpRequestError.InvalidResponse, "the backend switched protocols unasked");
            }
        }
    }

    private static async Task<string?> ReadHeadLineAsync(Http1Reader reader, int budget, CancellationToken cancellationToken)
    {
        try
        {
            // Past the bound is what the pooled client reports the same way, so that both ways answer it alike.
            return await reader.ReadLineAsync(budget, cancellationToken, () => new HttpRequestException(HttpRequestError.ConfigurationLimitExceeded,
                $"the backend's answer head is larger than {TunnelHeaders.MaxAnswerHeadBytes} bytes")).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the backend's answer head is malformed: {e.Message}", e);
        }
    }

    /// <summary>RFC 9112 §6.3: answers to HEAD, and 204 and 304 answers, have no content whatever their fields say.</summary>
    private static bool HasNoBody(HttpRequestMessage request, HttpResponseMessage response) =>
        request.Method == HttpMethod.Head || response.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotModified;

    /// <summary>
    /// One connection and what runs on it: the body being sent, the reader of the answer. The exchange ends with
    /// <see cref="DisposeAsync"/>, once both have ended: the body's copy reads the request's body and the backend timer,
    /// which are the request's and must not be touched after it. A body still being sent then is cut off (the answer
    /// is whole, or the exchange failed), and awaited.
    /// </summary>
    private sealed class Exchange : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop;

        public Exchange(NetworkStream connection, CancellationToken cancellationToken)
        {
            Stream = connection;
            Reader = new Http1Reader(Stream);
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        }

        public NetworkStream Stream { get; }

        public Http1Reader Reader { get; }

        public CancellationToken Token => _stop.Token;

        public Task? Sending { get; set; }

        public Task? Reading { get; set; }

        // Set by the first DisposeAsync, completed once the exchange has ended: later calls wait for it too.
        private TaskCompletionSource? _ended;

        public async ValueTask DisposeAsync()
        {
            var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (Interlocked.CompareExchange(ref _ended, ended, null) is { } first)
            {
                await first.Task.ConfigureAwait(false);
                return;
            }
            try
            {
                await _stop.CancelAsync().ConfigureAwait(false);
                Stream.Dispose();
                // Their failures are not the answer's: the body was cut off here, or the exchange has already failed.
                await Ended(Sending).ConfigureAwait(false);
                await Ended(Reading).ConfigureAwait(false);
                Reader.Dispose();
                _stop.Dispose();
            }
            finally
            {
                ended.SetResult();
            }
        }

        private static async Task Ended(Task? task)
        {
            if (task is null)
            {
                return;
            }
            try
            {
                await task.ConfigureAwait(false);
            }
            catch (Exception e) when (BodyCopier.IsIoFailure(e) || e is SocketException)
            {
            }
        }
    }

    /// <summary>
    /// The answer's content: its body, and the end of the exchange, which <see cref="ExchangeForwarder.EndAsync"/> awaits
    /// (disposing the content as <see cref="HttpResponseMessage.Dispose()"/> does cannot wait for it).
    /// </summary>
    private sealed class ExchangeContent(BackendBody body) : StreamContent(body), IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await body.DisposeAsync().ConfigureAwait(false);
            Dispose();
        }
    }

    /// <summary>
    /// The answer's content, delimited as RFC 9112 §6.3 says: chunked (trailers into the answer's
    /// <see cref="HttpResponseMessage.TrailingHeaders"/>), a Content-Length, or the end of the connection.
    /// Ending early is an <see cref="IOException"/>. Disposing it closes the connection.
    /// </summary>
    private sealed class BackendBody : ReadOnlyStream
    {
        private readonly Exchange _exchange;
        private readonly ChunkedReadStream? _chunked;
        private long? _remaining;

        public BackendBody(Exchange exchange, HttpResponseMessage response, List<KeyValuePair<string, string>> contentFields, bool noBody)
        {
            _exchange = exchange;
            var codings = response.Headers.NonValidated.TryGetValues("Transfer-Encoding", out var te) ? string.Join(',', te) : null;
            if (noBody)
            {
                _remaining = 0;
            }
            else if (codings is not null)
            {
                // Transfer-Encoding overrides Content-Length, which must then not be passed on.
                contentFields.RemoveAll(f => f.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase));
                if (FieldSyntax.ListMembers(codings).LastOrDefault()?.Equals("chunked", StringComparison.OrdinalIgnoreCase) == true)
                {
                    _chunked = new ChunkedReadStream(exchange.Reader, onTrailers: trailers =>
                    {
                        foreach (var (name, value) in trailers)
                        {
                            response.TrailingHeaders.TryAddWithoutValidation(name, value);
                        }
                    });
                }
            }
            else if (contentFields.Where(f => f.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Select(f => f.Value).ToList() is { Count: > 0 } lengths)
            {
                var distinct = lengths.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)).Distinct().ToList();
                if (distinct.Count != 1 || !long.TryParse(distinct[0], NumberStyles.None, CultureInfo.InvariantCulture, out var length))
                {
                    throw new HttpRequestException(HttpRequestError.InvalidResponse, "the backend's Content-Length is malformed");
                }
                contentFields.RemoveAll(f => f.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase));
                contentFields.Add(new("Content-Length", distinct[0]));
                _remaining = length;
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_chunked is not null)
            {
                return await _chunked.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            if (_remaining == 0)
            {
                return 0;
            }
            var slice = _remaining is { } left && left < buffer.Length ? buffer[..(int)left] : buffer;
            var read = await _exchange.Reader.ReadAsync(slice, cancellationToken).ConfigureAwait(false);
            if (read == 0 && !buffer.IsEmpty && _remaining is not null)
            {
                throw new IOException("the backend's answer ended before its Content-Length");
            }
            _remaining -= read;
            return read;
        }


        /// <summary>
        /// Ends the exchange without waiting for it (<see cref="HttpResponseMessage.Dispose()"/> disposes the answer this way):
        /// what still runs is stopped at once and cleaned up as it ends. <see cref="ExchangeForwarder.EndAsync"/> ends the
        /// exchange with <see cref="DisposeAsync"/> (through <see cref="ExchangeContent"/>) first, so that nothing outlives
        /// the request.
        /// </summary>
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Runs synchronously up to its first wait: by then the token is cancelled and the connection closed.
                _ = _exchange.DisposeAsync().AsTask();
            }
            base.Dispose(disposing);
        }

        /// <summary>Ends the exchange: returns once the body being sent and the reads have ended.</summary>
        public override async ValueTask DisposeAsync()
        {
            await _exchange.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}

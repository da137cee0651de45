using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// Reads an HTTP/1.1 head into a buffer until the empty line that ends it (RFC 9112 §2.1), bounded by the buffer's
/// size. Every line must end in CRLF: a bare LF is found at once (a head whose lines end in LF alone would never end
/// here, and would wait for a timeout), as the relay refuses it; so is a control character in the first line, which no
/// HTTP/1.x start line holds (a TLS ClientHello or a SOCKS greeting starts with one, and its sender would wait for an
/// answer as long as this reader for the head's end). The bytes after the head are the body's, and may hold anything.
/// </summary>
internal static class HeadReader
{
    /// <summary>How a read ended.</summary>
    public enum Outcome
    {
        /// <summary>The head is whole: it lies in <c>buffer[Start..End]</c>, and what came after it up to <c>Filled</c>.</summary>
        Whole,

        /// <summary>The other side ended its stream first, after <c>Filled</c> bytes.</summary>
        Closed,

        /// <summary>The buffer filled up before the head ended.</summary>
        TooLarge,

        /// <summary>A line of the head ends in a bare LF.</summary>
        BareLf,

        /// <summary>
        /// The first line holds a control character other than HTAB (at <c>End</c>): not HTTP/1.x, whose request and status
        /// lines hold none (RFC 9112 §3, §4).
        /// </summary>
        NotHttp,

        /// <summary>
        /// The first line, whole (it lies in <c>buffer[Start..End]</c>, its CR at <c>End</c>), is not one the caller's check
        /// takes: a request line without the shape of one, which could not become one whatever came after it.
        /// </summary>
        BadFirstLine,
    }

    /// <summary>Whether a whole first line, without its line end, is one to read the rest of the head for.</summary>
    public delegate bool FirstLineCheck(ReadOnlySpan<byte> line);

    /// <summary>What <see cref="ReadAsync"/> found.</summary>
    public readonly record struct Result(Outcome Outcome, int Start, int End, int Filled);

    /// <summary>
    /// Reads from <paramref name="from"/> into <paramref name="buffer"/>, which holds <paramref name="filled"/> bytes of the
    /// head already, until the head is whole or <paramref name="size"/> bytes are there. With
    /// <paramref name="skipEmptyLines"/>, empty lines before the head's first line are passed over (RFC 9112 §2.2: a server
    /// SHOULD ignore at least one before a request-line); they count towards <paramref name="size"/>, which bounds them.
    /// With <paramref name="firstLine"/>, the first line is checked as soon as its CR is read, without waiting for the
    /// head's end (a CR not followed by LF would not make it any better).
    /// </summary>
    public static async ValueTask<Result> ReadAsync(
        IDuplexConnection from, byte[] buffer, int filled, int size, bool skipEmptyLines, CancellationToken cancellationToken,
        FirstLineCheck? firstLine = null)
    {
        var start = 0;
        var scanned = 0;
        var skipping = skipEmptyLines;
        var inFirstLine = true;
        while (true)
        {
            if (skipping)
            {
                while (start + 1 < filled && buffer[start] == (byte)'\r' && buffer[start + 1] == (byte)'\n')
                {
                    start += 2;
                }
                // Past the empty lines once a byte other than their CR is there (or a CR not followed by LF: the head's to refuse).
                skipping = start == filled || (start + 1 == filled && buffer[start] == (byte)'\r');
            }
            if (!skipping)
            {
                var searchFrom = Math.Max(start, scanned - 3);
                var end = buffer.AsSpan(searchFrom, filled - searchFrom).IndexOf("\r\n\r\n"u8);
                var headEnd = end >= 0 ? searchFrom + end + 4 : filled;
                for (var i = Math.Max(start, scanned); i < headEnd; i++)
                {
                    var b = buffer[i];
                    if (b == (byte)'\n' && (i == 0 || buffer[i - 1] != (byte)'\r'))
                    {
                        return new Result(Outcome.BareLf, start, i, filled);
                    }
                    if (inFirstLine && (b is (byte)'\r' or (byte)'\n'))
                    {
                        inFirstLine = false;
                        if (firstLine is not null && !firstLine(buffer.AsSpan(start, i - start)))
                        {
                            return new Result(Outcome.BadFirstLine, start, i, filled);
                        }
                    }
                    else if (inFirstLine && (b is < 0x20 and not (byte)'\t' or 0x7F))
                    {
                        return new Result(Outcome.NotHttp, start, i, filled);
                    }
                }
                if (end >= 0)
                {
                    return new Result(Outcome.Whole, start, headEnd, filled);
                }
                scanned = filled;
            }
            if (filled == size)
            {
                return new Result(Outcome.TooLarge, start, filled, filled);
            }
            var read = await from.ReadAsync(buffer.AsMemory(filled, size - filled), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return new Result(Outcome.Closed, start, filled, filled);
            }
            filled += read;
        }
    }
}

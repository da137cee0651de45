using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Passage.Telemetry;

/// <summary>
/// Passage's logger factory as every part gets it: the same loggers, but each message, and the text of each exception
/// logged with one, is written with its control characters escaped (<see cref="Escape"/>).
/// </summary>
/// <remarks>
/// Log lines carry strings that peers and clients choose: the names in a certificate a peer presents, a Host, an SNI
/// name, a reason phrase, and exceptions whose messages quote them (a socket or TLS error, a parse failure). The console
/// formatters write them as they are (the text and systemd formats only turn the platform's newline into a space), so a
/// CR or an escape sequence in such a string would let its sender forge what looks like another line, or drive the
/// terminal of whoever reads the log, and a Unicode bidirectional control would reorder what the reader sees of the
/// line. Escaping the formatted message and the exception's text here covers every line and every format in one
/// place; the json format then escapes its own fields as JSON does (a backslash doubled).
/// </remarks>
internal sealed class EscapingLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    /// <summary>
    /// The characters <see cref="Escape"/> rewrites: C0 controls, DEL, C1 controls (NEL among them), the Unicode line and
    /// paragraph separators, and the bidirectional controls (marks, embeddings, overrides, isolates) that reorder text.
    /// </summary>
    private static readonly SearchValues<char> s_unsafe = SearchValues.Create(string.Concat(UnsafeCharacters().Select(c => (char)c)));

    /// <summary>The same but the newline, which separates the lines of an exception's text (its stack trace, its inner exceptions).</summary>
    private static readonly SearchValues<char> s_unsafeButNewline = SearchValues.Create(string.Concat(UnsafeCharacters().Where(c => c != '\n').Select(c => (char)c)));

    public ILogger CreateLogger(string categoryName) => new EscapingLogger(inner.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() => inner.Dispose();

    /// <summary>
    /// <paramref name="text"/> with each unsafe character (control, line or paragraph separator, bidirectional control)
    /// written as <c>\xHH</c> or <c>\uHHHH</c>; the same string when it holds none.
    /// </summary>
    public static string Escape(string text) => EscapeAny(text, s_unsafe);

    /// <summary>
    /// The text of <paramref name="exception"/> (its <see cref="Exception.ToString"/>, which the formatters print) with the
    /// message of each exception in it escaped whole, and elsewhere every unsafe character but the newlines that
    /// separate its lines; the formatters turn those into spaces (text, systemd) or escape them (json).
    /// </summary>
    public static string EscapeException(Exception exception)
    {
        var text = exception.ToString();
        foreach (var message in Messages(exception))
        {
            if (message.Length > 0 && message.AsSpan().ContainsAny(s_unsafe))
            {
                text = text.Replace(message, Escape(message), StringComparison.Ordinal);
            }
        }
        return EscapeAny(text, s_unsafeButNewline);
    }

    private static IEnumerable<int> UnsafeCharacters() =>
        Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21))
            .Append(0x061C).Append(0x200E).Append(0x200F).Append(0x2028).Append(0x2029)
            .Concat(Enumerable.Range(0x202A, 5)).Concat(Enumerable.Range(0x2066, 4));

    private static string EscapeAny(string text, SearchValues<char> unsafeChars)
    {
        var next = text.AsSpan().IndexOfAny(unsafeChars);
        if (next < 0)
        {
            return text;
        }
        var escaped = new StringBuilder(text.Length + 16);
        var rest = text.AsSpan();
        while (next >= 0)
        {
            escaped.Append(rest[..next]);
            var c = rest[next];
            escaped.Append(c <= 0xFF ? string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:X2}") : string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"));
            rest = rest[(next + 1)..];
            next = rest.IndexOfAny(unsafeChars);
        }
        return escaped.Append(rest).ToString();
    }

    /// <summary>The messages of <paramref name="exception"/> and of every exception inside it, as its text quotes them.</summary>
    private static IEnumerable<string> Messages(Exception exception)
    {
        yield return exception.Message;
        var inner = exception is AggregateException aggregate ? aggregate.InnerExceptions : (IEnumerable<Exception>)(exception.InnerException is { } one ? [one] : []);
        foreach (var e in inner)
        {
            foreach (var message in Messages(e))
            {
                yield return message;
            }
        }
    }

    private sealed class EscapingLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception is not null)
            {
                if (!inner.IsEnabled(logLevel))
                {
                    return;
                }
                exception = new EscapedException(exception);
            }
            inner.Log(logLevel, eventId, state, exception, EscapingFormatter<TState>.Of(formatter));
        }
    }

    /// <summary>
    /// The formatter that escapes what a formatter writes, made once per formatter (the generated log
    /// methods and the logging extensions pass the same few static ones every time), so that logging allocates no
    /// closure per line; kept no longer than the formatter itself.
    /// </summary>
    private static class EscapingFormatter<TState>
    {
        private static readonly ConditionalWeakTable<Func<TState, Exception?, string>, Func<TState, Exception?, string>> s_escaping = new();

        public static Func<TState, Exception?, string> Of(Func<TState, Exception?, string> formatter) =>
            s_escaping.GetValue(formatter, static f => (state, exception) => Escape(f(state, exception)));
    }

    /// <summary>
    /// An exception as the formatters are given it: its message and text escaped (<see cref="EscapeException"/>). It
    /// keeps no reference to the original, so that no formatter reaches the unescaped text through it.
    /// </summary>
    private sealed class EscapedException(Exception original) : Exception(Escape(original.Message))
    {
        private readonly string _text = EscapeException(original);

        public override string ToString() => _text;
    }
}

using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Passage.Telemetry;

/// <summary>
/// Passage's logger factory as every part gets it: the same loggers, but each message is written with its control
/// characters escaped (<see cref="Escape"/>).
/// </summary>
/// <remarks>
/// Log lines carry strings that peers and clients choose: the names in a certificate a peer presents, a Host, an SNI
/// name, a reason phrase. The console formatters write them as they are (the text and systemd formats only turn the
/// platform's newline into a space), so a CR or an escape sequence in such a string would let its sender forge what
/// looks like another line, or drive the terminal of whoever reads the log. Escaping the formatted message here covers
/// every line and every format in one place; the json format escapes its own fields as JSON does.
/// </remarks>
internal sealed class EscapingLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    /// <summary>The characters <see cref="Escape"/> rewrites: C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.</summary>
    private static readonly SearchValues<char> s_unsafe = SearchValues.Create(
        string.Concat(Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Append(0x2028).Append(0x2029).Select(c => (char)c)));

    public ILogger CreateLogger(string categoryName) => new EscapingLogger(inner.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() => inner.Dispose();

    /// <summary>
    /// <paramref name="text"/> with each control character (and U+2028, U+2029) written as <c>\xHH</c> or <c>\uHHHH</c>;
    /// the same string when it holds none.
    /// </summary>
    public static string Escape(string text)
    {
        var next = text.AsSpan().IndexOfAny(s_unsafe);
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
            next = rest.IndexOfAny(s_unsafe);
        }
        return escaped.Append(rest).ToString();
    }

    private sealed class EscapingLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(logLevel, eventId, state, exception, (s, e) => Escape(formatter(s, e)));
    }
}

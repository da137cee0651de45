using System.Security.Authentication;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Telemetry;

/// <summary>
/// What the formatters of every format (text, systemd, json) are given to print: the message and the exception's text
/// (its ToString, which each of them writes) with the characters that could forge a line, drive a terminal or reorder
/// what the reader sees escaped.
/// </summary>
public sealed class EscapingLoggerFactoryTests
{
    /// <summary>A name as a peer might choose it: a CR, an escape sequence, and a right-to-left override.</summary>
    private const string Hostile = "evil.test\r\u001b[31m\u202Etxt.exe\u2066x\u2069\u200F\u0085end";

    private const string Escaped = @"evil.test\x0D\x1B[31m\u202Etxt.exe\u2066x\u2069\u200F\x85end";

    [Fact]
    public void Bidirectional_controls_in_a_message_are_escaped_like_control_characters()
    {
        var recorder = new RecordingLogger();
        using var factory = new EscapingLoggerFactory(recorder.Factory());

        factory.CreateLogger("test").LogWarning("refused {Name}", Hostile);

        Assert.Equal("refused " + Escaped, Assert.Single(recorder.Messages));
        foreach (var c in "\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069\u200E\u200F\u061C\u2028\u2029\u0085")
        {
            var expected = c <= 0xFF ? $"\\x{(int)c:X2}" : $"\\u{(int)c:X4}";
            Assert.Equal("a" + expected + "b", EscapingLoggerFactory.Escape($"a{c}b"));
        }
    }

    [Fact]
    public void An_exceptions_text_is_escaped_and_keeps_its_lines()
    {
        var recorder = new RecordingLogger();
        using var factory = new EscapingLoggerFactory(recorder.Factory());
        Exception thrown;
        try
        {
            try
            {
                throw new InvalidOperationException("inner quoting " + Hostile + "\nforged line");
            }
            catch (Exception inner)
            {
                throw new AuthenticationException("The remote certificate names " + Hostile, inner);
            }
        }
        catch (Exception e)
        {
            thrown = e;
        }

        factory.CreateLogger("test").LogError(thrown, "handshake failed");

        var logged = Assert.Single(recorder.Entries).Exception!;
        var text = logged.ToString();
        Assert.Contains("System.Security.Authentication.AuthenticationException: The remote certificate names " + Escaped, text);
        Assert.Contains("inner quoting " + Escaped + @"\x0Aforged line", text);
        Assert.Equal("The remote certificate names " + Escaped, logged.Message);
        Assert.DoesNotContain('\u001b', text);
        Assert.DoesNotContain('\u202E', text);
        Assert.DoesNotContain('\r', text);

        // The stack trace keeps its lines, which the text and systemd formats join with spaces.
        Assert.Contains("\n   at ", text);
        Assert.Contains(nameof(An_exceptions_text_is_escaped_and_keeps_its_lines), text);
    }

    [Fact]
    public void Logging_allocates_no_closure_per_line()
    {
        var inner = new FormattingLogger();
        using var factory = new EscapingLoggerFactory(new LoggerFactory([inner]));
        var logger = factory.CreateLogger("test");
        Func<int, Exception?, string> formatter = static (_, _) => "a clean line";
        for (var i = 0; i < 100; i++)
        {
            logger.Log(LogLevel.Information, default, i, null, formatter);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            logger.Log(LogLevel.Information, default, i, null, formatter);
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // A closure is at least 24 bytes: one a line would be 24000 here.
        Assert.True(allocated < 1000, $"{allocated} bytes for 1000 lines");
        Assert.Equal(1100, inner.Count);
    }

    /// <summary>Formats every message, as the console formatters do, and keeps nothing.</summary>
    private sealed class FormattingLogger : ILogger, ILoggerProvider
    {
        public int Count { get; private set; }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).Length > 0)
            {
                Count++;
            }
        }

        public ILogger CreateLogger(string categoryName) => this;

        public void Dispose()
        {
        }
    }
}

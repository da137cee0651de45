using Microsoft.Extensions.Logging;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// Keeps every log entry: its event name, level, values, message and exception. It is its own provider, so a
/// <see cref="LoggerFactory"/> built on it records every category in one place.
/// </summary>
internal sealed class RecordingLogger : ILogger, ILoggerProvider
{
    private readonly List<LogEntry> _entries = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var values = state as IReadOnlyList<KeyValuePair<string, object?>> ?? [];
        lock (_entries)
        {
            _entries.Add(new LogEntry(eventId.Name ?? "", logLevel, values, formatter(state, exception), exception));
        }
    }

    /// <summary>Every entry's message as written, in order.</summary>
    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_entries)
            {
                return _entries.Select(e => e.Message).ToList();
            }
        }
    }

    /// <summary>Every entry so far, in order.</summary>
    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_entries)
            {
                return _entries.ToList();
            }
        }
    }

    public IReadOnlyList<LogEntry> Named(string name)
    {
        lock (_entries)
        {
            return _entries.Where(e => e.Name == name).ToList();
        }
    }

    public async Task<LogEntry> WaitForAsync(string name)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (true)
        {
            if (Named(name) is [var first, ..])
            {
                return first;
            }
            await Task.Delay(10, cts.Token);
        }
    }

    /// <summary>A factory whose loggers, of every category, record here.</summary>
    public ILoggerFactory Factory() => new LoggerFactory([this]);

    ILogger ILoggerProvider.CreateLogger(string categoryName) => this;

    void IDisposable.Dispose()
    {
    }
}

internal sealed record LogEntry(string Name, LogLevel Level, IReadOnlyList<KeyValuePair<string, object?>> Values, string Message, Exception? Exception)
{
    public object? Value(string key) => Values.Single(v => v.Key == key).Value;
}

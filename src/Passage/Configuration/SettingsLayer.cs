using Microsoft.Extensions.Configuration;

namespace Passage.Configuration;

/// <summary>One source of settings (a file, the environment, the command line) and its name for messages.</summary>
/// <param name="Source">Shown after an error, e.g. <c>relay.json</c>, <c>environment</c>, <c>flags</c>.</param>
/// <param name="Configuration">The settings, keyed as in the JSON file (<c>relay:idleTimeout</c>).</param>
public sealed record SettingsLayer(string Source, IConfiguration Configuration)
{
    /// <summary>The <see cref="Source"/> of the environment variables' layer (a file's is its path).</summary>
    public const string Environment = "environment";

    /// <summary>The <see cref="Source"/> of the command line's layer.</summary>
    public const string Flags = "flags";
}

using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Passage.Configuration;

/// <summary>
/// A settings file's JSON (comments and trailing commas allowed) as configuration keyed as the readers ask for it
/// (<c>relay:idleTimeout</c>), read by the framework's JSON provider with two corrections: a key written twice, a
/// section's as well as a value's, is refused (<see cref="DuplicateSettingException"/>), and <c>true</c> and
/// <c>false</c> read as written.
/// </summary>
/// <remarks>
/// The provider refuses a value's key written twice, but merges two objects under one key: <c>"relay"</c> written twice
/// took settings from both, which no JSON reader does (they keep the last) and no operator meant. It also stores a JSON
/// boolean as .NET spells it, <c>True</c>, so that an error quoted a value the file does not hold
/// (<c>relay.idleTimeout: 'True' is not a duration</c>).
/// </remarks>
internal static class JsonSettingsFile
{
    private static readonly JsonDocumentOptions s_options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>
    /// The configuration <paramref name="json"/> holds. Broken JSON throws as the provider does (a
    /// <see cref="JsonException"/> with its position, or a <see cref="FormatException"/> for a top level that is no object);
    /// a key written twice throws <see cref="DuplicateSettingException"/>.
    /// </summary>
    public static IConfiguration Read(byte[] json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var booleans = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        using (var document = Parse(json))
        {
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                Visit(document.RootElement, null, new HashSet<string>(StringComparer.OrdinalIgnoreCase), booleans);
            }
        }
        return new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(json, writable: false))
            .AddInMemoryCollection(booleans)
            .Build();
    }

    /// <summary>
    /// The document <paramref name="json"/> holds, its text decoded as the provider decodes it, by its byte order mark (UTF-8
    /// without one): a file saved as UTF-16, as some editors and Windows tools write JSON, is read, not refused at its first
    /// byte. Comments and trailing commas are allowed, as the provider allows them; broken JSON throws a <see cref="JsonException"/>.
    /// </summary>
    public static JsonDocument Parse(byte[] json)
    {
        using var reader = new StreamReader(new MemoryStream(json, writable: false), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return JsonDocument.Parse(reader.ReadToEnd(), s_options);
    }

    /// <summary>
    /// Checks the keys below <paramref name="element"/> (at <paramref name="path"/>) against those <paramref name="seen"/>
    /// before, and collects its booleans, keyed as the provider keys them.
    /// </summary>
    private static void Visit(JsonElement element, string? path, HashSet<string> seen, Dictionary<string, string?> booleans)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    // Keys are case-insensitive ("Relay" and "relay" are one section), and a name holding a colon is a path
                    // ("relay:idleTimeout" is the key of "idleTimeout" in "relay"): the set holds whole keys, as the provider's.
                    var key = path is null ? property.Name : ConfigurationPath.Combine(path, property.Name);
                    if (!seen.Add(key))
                    {
                        throw new DuplicateSettingException(key);
                    }
                    Visit(property.Value, key, seen, booleans);
                }
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Visit(item, ConfigurationPath.Combine(path!, index.ToString(System.Globalization.CultureInfo.InvariantCulture)), seen, booleans);
                    index++;
                }
                break;
            case JsonValueKind.True or JsonValueKind.False:
                booleans[path!] = element.GetRawText();
                break;
        }
    }
}

/// <summary>A settings file that writes <see cref="Key"/> twice.</summary>
/// <param name="key">The key as configuration names it: <c>relay:connect</c>.</param>
internal sealed class DuplicateSettingException(string key) : FormatException($"{SettingsReader.Display(key)} is written twice")
{
    /// <summary>The key written twice, as configuration names it (<c>relay:connect</c>).</summary>
    public string Key { get; } = key;
}

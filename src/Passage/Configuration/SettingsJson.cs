using System.Text.Json;

namespace Passage.Configuration;

/// <summary>Writes effective settings as JSON in the settings file's own schema (<c>passage config check</c>).</summary>
internal static class SettingsJson
{
    /// <summary>One indented JSON object, its members written by <paramref name="members"/>.</summary>
    public static string Write(Action<Utf8JsonWriter> members)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            members(json);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes a list setting: <c>"name": ["a", "b"]</c>.</summary>
    public static void WriteArray(Utf8JsonWriter json, string name, IEnumerable<string> values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
        {
            json.WriteStringValue(value);
        }
        json.WriteEndArray();
    }
}

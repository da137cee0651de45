using System.Globalization;

namespace Passage.Http;

/// <summary>
/// The Max-Forwards field (RFC 9110 §7.6.2), which only OPTIONS and TRACE heed: how many more intermediaries may forward
/// the request. An intermediary that receives 0 is the request's final recipient and answers it itself; one that forwards
/// the request sends one less.
/// </summary>
internal static class MaxForwards
{
    /// <summary>The field's name.</summary>
    public const string Name = "Max-Forwards";

    /// <summary>
    /// The Max-Forwards of a request of <paramref name="method"/> whose Max-Forwards field lines hold
    /// <paramref name="values"/>. Null for any method but OPTIONS and TRACE, and when there is no Max-Forwards, or not one
    /// number (1*DIGIT, below 10^18): such a request goes on with the field unchanged.
    /// </summary>
    public static long? Remaining(string method, IEnumerable<string?> values) =>
        method is "OPTIONS" or "TRACE" && values.ToArray() is [{ Length: > 0 and <= 18 } value] && value.All(char.IsAsciiDigit)
            ? long.Parse(value, CultureInfo.InvariantCulture)
            : null;
}

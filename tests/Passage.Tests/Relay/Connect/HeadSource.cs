namespace Passage.Tests.Relay.Connect;

/// <summary>A real client whose CONNECT request head is captured at test time.</summary>
public enum HeadSource
{
    /// <summary><c>curl -p -x http://127.0.0.1:PORT https://origin.test/</c>.</summary>
    Curl,

    /// <summary>The same with <c>--proxy-user</c>, so the head carries Proxy-Authorization.</summary>
    CurlWithCredentials,

    /// <summary>curl tunnelling to an IPv6 literal, <c>https://[::1]:8443/</c>.</summary>
    CurlIPv6,

    /// <summary><see cref="HttpClient"/> with a <see cref="System.Net.WebProxy"/>, fetching an https URL.</summary>
    HttpClient,
}

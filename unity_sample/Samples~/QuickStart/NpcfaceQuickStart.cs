// Quick start: makes the face speak its clip once the session is open, changes its emotion
// partway through the line, and looks around a little between lines. Put it next to an
// NpcfaceFace and an NpcfaceAudioStreamer (see README.md, "The sample scene").
using Npcface.Client;
using Npcface.Unity;
using UnityEngine;

public sealed class NpcfaceQuickStart : MonoBehaviour
{
    public NpcfaceFace face;
    public NpcfaceAudioStreamer streamer;
    [Tooltip("Switch to this emotion partway through the line.")]
    public string emotion = "happy";
    [Range(0f, 1f)] public float intensity = 0.8f;
    [Tooltip("Seconds into the line.")]
    public float emotionAt = 1.5f;
    [Tooltip("Speak again this many seconds after a line ends (0 = once).")]
    public float repeatAfter = 3f;

    bool emotionSent;
    float nextLineAt = -1f;

    void Start()
    {
        if (face == null) face = GetComponent<NpcfaceFace>();
        if (streamer == null) streamer = GetComponent<NpcfaceAudioStreamer>();
        face.Opened += OnOpened;
        face.LineEnded += OnLineEnded;
        face.ErrorReceived += error => Debug.LogWarning("npcface said: " + error.Code + " " + error.Message, this);
    }

    void OnOpened(OpenedMessage opened)
    {
        Debug.Log("npcface session " + opened.Session + " open at " + opened.Fps + " fps", this);
        nextLineAt = Time.realtimeSinceStartup;
    }

    void OnLineEnded(LineEndMessage end)
    {
        Debug.Log(string.Format("npcface line {0}: {1} ticks for {2:F2} s of audio, {3} frames dropped",
                                end.Line, end.Ticks, end.Duration, end.FramesDropped), this);
        face.SetEmotion("neutral", 1f, 0.5f);
        face.SetGaze(Random.Range(-15f, 15f), Random.Range(-5f, 5f));
        if (repeatAfter > 0f)
            nextLineAt = Time.realtimeSinceStartup + repeatAfter;
    }

    void Update()
    {
        if (nextLineAt >= 0f && Time.realtimeSinceStartup >= nextLineAt && streamer.Speak())
        {
            nextLineAt = -1f;
            emotionSent = false;
        }
        if (streamer.IsSpeaking && !emotionSent && face.LineTime >= emotionAt)
        {
            face.SetEmotion(emotion, intensity);
            emotionSent = true;
        }
    }
}

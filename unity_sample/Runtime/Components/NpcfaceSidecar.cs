// The connection to `npcface serve`: one per scene, shared by every NpcfaceFace.
// Connects on a pool thread (the main thread never waits on TCP), says hello, then drains the
// client's queue in Update and routes replies to the request that asked and session messages to
// their face. Reconnects after a lost connection and re-says hello after a server restart.
using System;
using System.Collections.Generic;
using System.Threading;
using Npcface.Client;
using UnityEngine;

namespace Npcface.Unity
{
    [DisallowMultipleComponent]
    [DefaultExecutionOrder(-100)]  // routes this frame's messages before the faces sample them
    [AddComponentMenu("npcface/Npcface Sidecar")]
    public sealed class NpcfaceSidecar : MonoBehaviour
    {
        [Tooltip("Where `npcface serve` listens (its default is 127.0.0.1:5555).")]
        public string host = "127.0.0.1";
        public int port = 5555;
        [Tooltip("Seconds between connection attempts while the sidecar is unreachable.")]
        public float retrySeconds = 2f;

        /// <summary>The protocol client; null while disconnected.</summary>
        public NpcfaceClient Client { get; private set; }
        /// <summary>The server's welcome; null until the hello handshake is done.</summary>
        public WelcomeMessage Welcome { get; private set; }
        public bool IsReady { get { return Client != null && Welcome != null; } }
        /// <summary>Why the last connection attempt failed or the connection broke.</summary>
        public string LastProblem { get; private set; }

        public event Action<WelcomeMessage> Ready;
        public event Action<string> Lost;

        readonly Dictionary<string, NpcfaceFace> faces = new Dictionary<string, NpcfaceFace>();
        readonly Dictionary<string, Action<ServerMessage>> pending = new Dictionary<string, Action<ServerMessage>>();
        readonly object connectLock = new object();
        NpcfaceClient connected;  // handed over from the connect thread under connectLock
        string connectError;
        volatile bool connecting;
        float retryAt;

        void OnEnable()
        {
            StartConnect();
        }

        void OnDisable()
        {
            Disconnect("disabled");
        }

        void Update()
        {
            TakeConnectResult();
            if (Client == null && !connecting && Time.realtimeSinceStartup >= retryAt)
                StartConnect();
            ServerMessage message;
            while (Client != null && Client.TryReceive(out message))
                Route(message);
        }

        /// <summary>Calls onReply (on the main thread) with the reply or error to request `id`.</summary>
        public void Request(string id, Action<ServerMessage> onReply)
        {
            if (id != null)
                pending[id] = onReply;
        }

        public void Register(NpcfaceFace face)
        {
            faces[face.SessionName] = face;
            if (IsReady)
                face.OnSidecarReady(this);
        }

        public void Unregister(NpcfaceFace face)
        {
            NpcfaceFace registered;
            if (faces.TryGetValue(face.SessionName, out registered) && registered == face)
                faces.Remove(face.SessionName);
        }

        void StartConnect()
        {
            connecting = true;
            string targetHost = host;
            int targetPort = port;
            ThreadPool.QueueUserWorkItem(state =>
            {
                NpcfaceClient client = null;
                string error = null;
                try
                {
                    client = NpcfaceClient.Connect(targetHost, targetPort, 3000);
                }
                catch (ZmtpException e)
                {
                    error = e.Message;
                }
                lock (connectLock)
                {
                    connected = client;
                    connectError = error;
                    connecting = false;
                }
            });
        }

        void TakeConnectResult()
        {
            NpcfaceClient client;
            string error;
            lock (connectLock)
            {
                client = connected;
                error = connectError;
                connected = null;
                connectError = null;
            }
            if (client != null)
            {
                if (!isActiveAndEnabled)
                {
                    client.Dispose();
                    return;
                }
                Client = client;
                SayHello();
            }
            else if (error != null)
            {
                if (error != LastProblem)
                    Debug.LogWarning("npcface: " + error + "; retrying every " + retrySeconds + " s", this);
                LastProblem = error;
                retryAt = Time.realtimeSinceStartup + retrySeconds;
            }
        }

        void SayHello()
        {
            Welcome = null;
            Request(Client.Hello(), reply =>
            {
                var welcome = reply as WelcomeMessage;
                if (welcome == null)
                {
                    Debug.LogError("npcface: the sidecar refused hello: " + reply, this);
                    return;
                }
                if (welcome.Protocol.Split('.')[0] != NpcfaceClient.ProtocolVersion.Split('.')[0])
                {
                    Debug.LogError(string.Format("npcface: the sidecar speaks protocol {0}, this client {1}: update one of them",
                                                 welcome.Protocol, NpcfaceClient.ProtocolVersion), this);
                    Disconnect("version mismatch");
                    retryAt = float.MaxValue;
                    return;
                }
                Client.Adopt(welcome);
                Welcome = welcome;
                LastProblem = null;
                if (Ready != null)
                    Ready(welcome);
                foreach (NpcfaceFace face in new List<NpcfaceFace>(faces.Values))
                    face.OnSidecarReady(this);
            });
        }

        void Route(ServerMessage message)
        {
            if (message is ConnectionLostMessage)
            {
                Disconnect(((ConnectionLostMessage)message).Reason);
                return;
            }
            var error = message as ErrorMessage;
            if (error != null && error.Code == "hello_required")
            {
                // The sidecar restarted and forgot us: hello again, then every face re-opens.
                foreach (NpcfaceFace face in faces.Values)
                    face.OnSidecarLost();
                SayHello();
                return;
            }
            Action<ServerMessage> onReply;
            if (message.Id != null && pending.TryGetValue(message.Id, out onReply))
            {
                pending.Remove(message.Id);
                onReply(message);
                return;
            }
            NpcfaceFace target;
            if (message.Session != null && faces.TryGetValue(message.Session, out target))
                target.Receive(message);
            else if (error != null)
                Debug.LogWarning("npcface: " + error, this);
        }

        void Disconnect(string reason)
        {
            if (Client == null)
                return;
            Client.Dispose();
            Client = null;
            Welcome = null;
            pending.Clear();
            LastProblem = reason;
            retryAt = Time.realtimeSinceStartup + retrySeconds;
            foreach (NpcfaceFace face in faces.Values)
                face.OnSidecarLost();
            if (Lost != null)
                Lost(reason);
        }
    }
}

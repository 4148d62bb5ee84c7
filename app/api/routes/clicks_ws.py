"""A live stream of clicks served by every replica."""

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.core.metrics import WEBSOCKETS
from app.services.click_stream import ClickStream

router = APIRouter(tags=["clicks"])


@router.websocket("/ws/clicks")
async def clicks(websocket: WebSocket) -> None:
    stream: ClickStream = websocket.state.click_stream
    await websocket.accept()
    with WEBSOCKETS.track_inprogress(), stream.subscribe() as queue:
        # The client sends nothing; reading is how its disconnect is noticed.
        disconnected = asyncio.create_task(_wait_for_disconnect(websocket))
        try:
            while True:
                next_event = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({next_event, disconnected}, return_when=asyncio.FIRST_COMPLETED)
                if disconnected in done:
                    next_event.cancel()
                    return
                try:
                    await websocket.send_text(next_event.result())
                except WebSocketDisconnect:
                    # Closed while the event was on its way: by the client, or by the server
                    # shutting down (Uvicorn closes every WebSocket with 1012, Service Restart).
                    return
        finally:
            disconnected.cancel()


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        return
